import { DockerfileError } from '../../../errors/index.js';
import { DEFAULT_PATH, type ContainerConfig, type ImageConfig } from '../../../oci/index.js';
import type { BuildGraph, CopyOp, ExecOp, MountDef, Op, Vertex } from '../../../graph/index.js';
import { parse } from '../parser/index.js';
import { parseDockerfile, suggest, type ArgCommand, type Command, type Stage } from '../instructions/index.js';
import { createShellLexer, type ShellLexer } from '../shell/index.js';
import { parseMount } from './mounts.js';
import type { ConvertOptions } from './types.js';

/** Build args that never enter the cache key unless the Dockerfile declares them (BuildKit's proxy args). */
const PROXY_ARGS = new Set([
  'HTTP_PROXY', 'http_proxy', 'HTTPS_PROXY', 'https_proxy', 'FTP_PROXY', 'ftp_proxy', 'NO_PROXY', 'no_proxy', 'ALL_PROXY', 'all_proxy',
]);

interface StageState {
  stage: Stage;
  /** last vertex of the stage */
  vertex: string;
  config: ImageConfig;
  /** history entries of this stage chain (inherited from a parent stage) */
  history: BuildGraph['history'];
}

/** Turn a Dockerfile into a build graph. Pure apart from the image resolver. */
export async function convertDockerfile(opts: ConvertOptions): Promise<BuildGraph> {
  const { file } = opts;
  const pr = parse(opts.text, { file });
  const df = parseDockerfile(opts.text, { file });
  const lex = createShellLexer({ escapeToken: pr.escapeToken });
  if (df.stages.length === 0) throw new DockerfileError('no FROM instruction: a Dockerfile must start with FROM', { file, line: 1 });
  checkInstructionLimit(df.stages, file);

  const platform = opts.platform ?? { os: 'linux', architecture: nodeArchToOci(process.arch) };
  const platformStr = `${platform.os}/${platform.architecture}${platform.variant ? `/${platform.variant}` : ''}`;
  const autoArgs: Record<string, string> = {
    TARGETPLATFORM: platformStr, TARGETOS: platform.os, TARGETARCH: platform.architecture, TARGETVARIANT: platform.variant ?? '',
    BUILDPLATFORM: platformStr, BUILDOS: platform.os, BUILDARCH: platform.architecture, BUILDVARIANT: platform.variant ?? '',
  };

  // global ARGs (before the first FROM)
  const globalArgs = new Map<string, string | undefined>(Object.entries(autoArgs));
  for (const a of df.metaArgs) declareArgs(a, globalArgs, globalArgs, opts.buildArgs, lex);
  /** ARG names declared in the global scope and the stages built: a build arg outside them is not consumed */
  const declared = new Set<string>(df.metaArgs.flatMap((a) => a.args.map((x) => x.key)));

  const vertices = new Map<string, Vertex>();
  const order: string[] = [];
  const stages: StageState[] = [];
  const byName = new Map<string, number>();
  df.stages.forEach((s, i) => {
    if (s.name) {
      if (byName.has(s.name)) throw new DockerfileError(`duplicate stage name "${s.name}"`, { file, line: s.from.location.startLine });
      byName.set(s.name, i);
    }
  });

  const targetIndex = resolveTarget(df.stages, opts.target, file);
  const needed = neededStages(df.stages, targetIndex, byName, globalArgs, lex);
  const total = df.stages.length;
  let counter = 0;
  const newId = (): string => `v${++counter}`;

  for (let si = 0; si <= targetIndex; si++) {
    const stage = df.stages[si]!;
    if (!needed.has(si)) {
      stages.push(undefined as unknown as StageState);
      continue;
    }
    const prefix = total > 1 || stage.name ? `${stage.name || `stage-${si}`} ` : '';
    const stageNoCache = opts.noCache === true || (opts.noCacheFilter ?? []).some((f) => f === stage.name || f === String(si));
    const loc = (line: number): { file: string; line: number } => ({ file, line });

    // ---- FROM
    const globalEnv = (name: string): string | undefined => globalArgs.get(name);
    const baseRef = expand(lex, stage.from.image, globalEnv, file, stage.from.location.startLine);
    let state: StageState;
    const fromName = `FROM ${baseRef}`;
    const parentStageIdx = byName.get(baseRef.toLowerCase()) ?? (/^\d+$/.test(baseRef) && Number(baseRef) < si ? Number(baseRef) : undefined);
    if (parentStageIdx !== undefined && parentStageIdx < si) {
      const ps = stages[parentStageIdx]!;
      state = { stage, vertex: ps.vertex, config: structuredClone(ps.config), history: [...ps.history] };
    } else if (baseRef.toLowerCase() === 'scratch') {
      const id = newId();
      vertices.set(id, { id, name: fromName, stage: stage.name || String(si), op: { type: 'source', ref: 'scratch' }, deps: [], location: loc(stage.from.location.startLine) });
      order.push(id);
      state = {
        stage,
        vertex: id,
        config: { architecture: platform.architecture, os: platform.os, config: { Env: [`PATH=${DEFAULT_PATH}`] }, rootfs: { type: 'layers', diff_ids: [] } },
        history: [],
      };
    } else {
      let resolved;
      try {
        resolved = await opts.images.resolve(baseRef, { signal: opts.signal });
      } catch (err) {
        const e = err as { message?: string; hint?: string; code?: string };
        throw new DockerfileError(`FROM ${baseRef}: ${e.message ?? String(err)}`, loc(stage.from.location.startLine), {
          code: 'ERR_KILN_IMAGE_NOT_FOUND',
          cause: err,
        });
      }
      const id = newId();
      vertices.set(id, { id, name: `FROM ${resolved.ref}`, stage: stage.name || String(si), op: { type: 'source', ref: resolved.ref }, deps: [], location: loc(stage.from.location.startLine) });
      order.push(id);
      const cfg = structuredClone(resolved.config);
      cfg.config = cfg.config ?? {};
      state = {
        stage,
        vertex: id,
        config: cfg,
        history: (cfg.history ?? []).map((h) => ({ createdBy: h.created_by ?? '', vertex: null, emptyLayer: h.empty_layer === true, base: h })),
      };
    }
    const c = state.config.config;
    const stageArgs = new Map<string, string | undefined>();
    const envOf = (): string[] => c.Env ?? [];
    // name → index in c.Env: ENV and lookups cost O(1), not a scan or copy of the whole list per instruction
    const env = new EnvIndex(c);
    /** lookup for word expansion: ENV wins over ARG */
    const lookup = (name: string): string | undefined => {
      const e = env.get(name);
      if (e !== undefined) return e;
      if (stageArgs.has(name)) return stageArgs.get(name);
      return undefined;
    };

    const commands: Command[] = [...onbuildTriggers(state.config, file, stage.from.location.startLine), ...stage.commands];
    if (state.config.config.OnBuild) state.config.config.OnBuild = null;
    const stepsTotal = commands.filter((x) => x.name !== 'arg').length + 1;
    const fromVertex = vertices.get(state.vertex)!;
    if (fromVertex.op.type === 'source' && fromVertex.stage === (stage.name || String(si))) fromVertex.name = `[${prefix}1/${stepsTotal}] ${fromVertex.name}`;
    let step = 1;

    for (const cmd of commands) {
      if (cmd.name !== 'arg') step++;
      const line = cmd.location.startLine;
      const name = `[${prefix}${step}/${stepsTotal}] ${displayText(cmd)}`;
      const ex = (w: string): string => expand(lex, w, lookup, file, line);
      const addVertex = (op: Op, extra: Partial<Vertex> = {}): string => {
        const id = newId();
        vertices.set(id, {
          id,
          name,
          stage: stage.name || String(si),
          op,
          parent: state.vertex,
          deps: [],
          location: loc(line),
          ...(stageNoCache ? { noCache: true } : {}),
          ...extra,
        });
        order.push(id);
        state.vertex = id;
        return id;
      };
      const meta = (change: Record<string, unknown>): void => {
        const id = addVertex({ type: 'meta', change });
        state.history.push({ createdBy: historyText(cmd), vertex: id, emptyLayer: true });
      };

      switch (cmd.name) {
        case 'arg': {
          // ARG changes no output; its value reaches RUN steps through their env
          declareArgs(cmd, stageArgs, globalArgs, opts.buildArgs, lex, lookup);
          for (const a of cmd.args) declared.add(a.key);
          break;
        }
        case 'env': {
          const kv: Record<string, string> = {};
          for (const e of cmd.env) {
            const k = ex(e.key);
            const v = ex(e.value);
            env.set(k, v);
            kv[k] = v;
          }
          meta({ env: kv });
          break;
        }
        case 'label': {
          const kv: Record<string, string> = {};
          for (const l of cmd.labels) {
            const k = ex(l.key);
            const v = ex(l.value);
            c.Labels = { ...(c.Labels ?? {}), [k]: v };
            kv[k] = v;
          }
          meta({ label: kv });
          break;
        }
        case 'maintainer': {
          state.config.author = ex(cmd.maintainer);
          meta({ maintainer: state.config.author });
          break;
        }
        case 'workdir': {
          const raw = ex(cmd.path);
          const p = resolvePath(c.WorkingDir ?? '/', raw);
          // as BuildKit: an absolute path is kept as written (a trailing '/' stays), a relative one is joined and cleaned
          c.WorkingDir = raw.startsWith('/') ? raw : p;
          const id = addVertex({ type: 'mkdir', path: p, user: c.User ?? '' });
          state.history.push({ createdBy: historyText(cmd), vertex: id, emptyLayer: false });
          break;
        }
        case 'user': {
          c.User = ex(cmd.user);
          meta({ user: c.User });
          break;
        }
        case 'expose': {
          const ports: string[] = [];
          for (const p of cmd.ports) for (const w of lex.processWords(p, lookup)) ports.push(...expandPorts(w, file, line));
          c.ExposedPorts = { ...(c.ExposedPorts ?? {}) };
          for (const p of ports) c.ExposedPorts[p] = {};
          meta({ expose: ports });
          break;
        }
        case 'volume': {
          c.Volumes = { ...(c.Volumes ?? {}) };
          const vols = cmd.volumes.map(ex);
          for (const v of vols) {
            if (v.trim() === '') throw new DockerfileError('VOLUME specified can not be an empty string', loc(line));
            c.Volumes[v] = {};
          }
          meta({ volume: vols });
          break;
        }
        case 'stopsignal': {
          c.StopSignal = ex(cmd.signal);
          meta({ stopsignal: c.StopSignal });
          break;
        }
        case 'shell': {
          c.Shell = cmd.shell;
          meta({ shell: cmd.shell });
          break;
        }
        case 'onbuild': {
          c.OnBuild = [...(c.OnBuild ?? []), cmd.expression];
          meta({ onbuild: cmd.expression });
          break;
        }
        case 'cmd': {
          c.Cmd = commandLine(cmd, c);
          meta({ cmd: c.Cmd });
          break;
        }
        case 'entrypoint': {
          c.Entrypoint = commandLine(cmd, c);
          // Docker: a new ENTRYPOINT drops a CMD inherited from the base
          if (!stageHasCmdBefore(commands, cmd)) c.Cmd = null;
          meta({ entrypoint: c.Entrypoint });
          break;
        }
        case 'healthcheck': {
          const hc = { ...(c.Healthcheck ?? {}) } as NonNullable<ContainerConfig['Healthcheck']>;
          hc.Test = cmd.test;
          if (cmd.interval) hc.Interval = cmd.interval; else delete hc.Interval;
          if (cmd.timeout) hc.Timeout = cmd.timeout; else delete hc.Timeout;
          if (cmd.startPeriod) hc.StartPeriod = cmd.startPeriod; else delete hc.StartPeriod;
          if (cmd.startInterval) hc.StartInterval = cmd.startInterval; else delete hc.StartInterval;
          if (cmd.retries) hc.Retries = cmd.retries; else delete hc.Retries;
          c.Healthcheck = hc;
          meta({ healthcheck: hc });
          break;
        }
        case 'run': {
          const runEnv = [...envOf()];
          for (const [k, v] of stageArgs) {
            if (v === undefined || env.get(k) !== undefined) continue;
            runEnv.push(`${k}=${v}`);
          }
          const args = runArgs(cmd, c);
          if (args.length === 0 || args[0] === '') throw new DockerfileError('RUN needs a command: the exec form names no program (`RUN []`)', loc(line));
          const mounts: MountDef[] = [];
          const deps: string[] = [];
          for (const m of cmd.mounts) {
            const md = parseMount(ex(m), { file, line });
            if (md.fromStage !== undefined) {
              const from = md.fromStage;
              const idx = stageIndex(from, byName, si);
              if (idx !== undefined) md.def.fromVertex = stages[idx]!.vertex;
              else {
                const srcId = imageSourceVertex(from);
                md.def.fromVertex = await srcId;
              }
              deps.push(md.def.fromVertex);
            }
            mounts.push(md.def);
          }
          const network = (cmd.network || 'default') as ExecOp['network'];
          if (!['default', 'none', 'host'].includes(network)) throw new DockerfileError(`unsupported network mode "${cmd.network}"`, loc(line));
          if (cmd.security && cmd.security !== 'sandbox') {
            throw new DockerfileError(`RUN --security=${cmd.security} is not allowed (kiln runs every step sandboxed)`, loc(line), { code: 'ERR_KILN_NOT_SUPPORTED' });
          }
          const op: ExecOp = {
            type: 'exec',
            args,
            env: runEnv,
            cwd: c.WorkingDir || '/',
            user: c.User ?? '',
            network,
            mounts,
            ...(cmd.security ? { security: cmd.security } : {}),
          };
          const id = addVertex(op, { deps });
          state.history.push({ createdBy: historyText(cmd), vertex: id, emptyLayer: false });
          break;
        }
        case 'copy':
        case 'add': {
          let from: CopyOp['from'] = 'context';
          const deps: string[] = [];
          if (cmd.from) {
            const fromRef = ex(cmd.from);
            const idx = stageIndex(fromRef, byName, si);
            if (idx !== undefined) {
              if (!stages[idx]) throw new DockerfileError(`COPY --from=${fromRef}: stage is not built`, loc(line));
              from = { vertex: stages[idx]!.vertex };
            } else {
              from = { vertex: await imageSourceVertex(fromRef) };
            }
            deps.push(from.vertex);
          }
          if (cmd.sources.length === 0 && cmd.sourceContents.length === 0) throw new DockerfileError(`${cmd.name.toUpperCase()} requires at least two arguments`, loc(line));
          const op: CopyOp = {
            type: 'copy',
            from,
            sources: cmd.sources.map(ex),
            inline: cmd.sourceContents.map((s) => ({ path: s.path, data: s.expand ? ex(s.data) : s.data })),
            dest: ex(cmd.dest),
            workdir: c.WorkingDir || '/',
            chown: cmd.chown ? ex(cmd.chown) : '',
            chmod: cmd.chmod ? ex(cmd.chmod) : '',
            excludes: cmd.excludes.map(ex),
            parents: cmd.parents,
            link: cmd.link,
            add: cmd.name === 'add',
            checksum: cmd.checksum ? ex(cmd.checksum) : '',
          };
          if (cmd.name === 'add' && cmd.keepGitDir !== undefined) {
            throw new DockerfileError('ADD --keep-git-dir is not supported by kiln (git sources are not supported)', loc(line), { code: 'ERR_KILN_NOT_SUPPORTED' });
          }
          if (op.chmod && !/^[0-7]{3,4}$/.test(op.chmod)) throw new DockerfileError(`invalid --chmod value "${op.chmod}": use octal such as 0755`, loc(line));
          const id = addVertex(op, { deps });
          state.history.push({ createdBy: historyText(cmd), vertex: id, emptyLayer: false });
          break;
        }
        default: {
          const never: never = cmd;
          throw new DockerfileError(`unsupported instruction ${(never as Command).name}`, loc(line));
        }
      }
    }
    stages.push(state);
  }

  async function imageSourceVertex(ref: string): Promise<string> {
    const resolved = await opts.images.resolve(ref, { signal: opts.signal });
    const id = newId();
    vertices.set(id, { id, name: `[internal] load ${resolved.ref}`, stage: '', op: { type: 'source', ref: resolved.ref }, deps: [], hidden: true });
    order.push(id);
    return id;
  }

  const target = stages[targetIndex]!;
  const warnings = unconsumedArgsWarning(opts.buildArgs, declared, Object.keys(autoArgs));
  return { vertices, order, target: { vertex: target.vertex, config: target.config }, history: target.history, ...(warnings.length ? { warnings } : {}) };
}

/** Most instructions a Dockerfile may have (conversion and solving are linear in it; this bounds the work). */
export const MAX_INSTRUCTIONS = 100_000;

function checkInstructionLimit(stages: Stage[], file: string): void {
  let n = 0;
  for (const st of stages) {
    n += 1 + st.commands.length;
    if (n > MAX_INSTRUCTIONS) {
      const over = st.commands[st.commands.length - (n - MAX_INSTRUCTIONS)]; // undefined when it is the FROM
      throw new DockerfileError(`too many instructions: the limit is ${MAX_INSTRUCTIONS} (MAX_INSTRUCTIONS) per Dockerfile`, { file, line: over?.location.startLine ?? st.from.location.startLine }, { code: 'ERR_KILN_LIMIT_EXCEEDED' });
    }
  }
}

function resolveTarget(stages: Stage[], target: string | undefined, file: string): number {
  if (!target) return stages.length - 1;
  const i = stages.findIndex((s) => s.name === target.toLowerCase());
  if (i < 0) throw new DockerfileError(`target stage "${target}" could not be found`, { file, line: 1 }, { code: 'ERR_KILN_ARGUMENT' });
  return i;
}

function stageIndex(ref: string, byName: Map<string, number>, current: number): number | undefined {
  const n = byName.get(ref.toLowerCase());
  if (n !== undefined && n < current) return n;
  if (/^\d+$/.test(ref) && Number(ref) < current) return Number(ref);
  return undefined;
}

/** Stages the target needs (FROM, COPY --from, RUN --mount from), found by name. */
function neededStages(stages: Stage[], target: number, byName: Map<string, number>, globalArgs: Map<string, string | undefined>, lex: ShellLexer): Set<number> {
  const need = new Set<number>();
  const visit = (i: number): void => {
    if (need.has(i)) return;
    need.add(i);
    const s = stages[i]!;
    let base = s.from.image;
    try {
      base = lex.processWord(s.from.image, (n) => globalArgs.get(n));
    } catch {
      /* reported during conversion */
    }
    const refs = [base];
    for (const c of s.commands) {
      if ((c.name === 'copy' || c.name === 'add') && c.from) refs.push(c.from);
      if (c.name === 'run') for (const m of c.mounts) {
        const f = /(?:^|,)from=([^,]+)/.exec(m);
        if (f) refs.push(f[1]!);
      }
    }
    for (const r of refs) {
      const idx = stageIndex(r, byName, i);
      if (idx !== undefined) visit(idx);
    }
  };
  visit(target);
  return need;
}

/** Build args BuildKit consumes without an ARG: proxies, its own settings, and the reproducibility epoch. */
function isPredefinedArg(name: string): boolean {
  return PROXY_ARGS.has(name) || name.startsWith('BUILDKIT_') || name === 'SOURCE_DATE_EPOCH';
}

/**
 * BuildKit's warning for build args no ARG of the built stages declares, with the declared name each nearly matches
 * (a typo such as GREETNG for GREETING).
 */
function unconsumedArgsWarning(buildArgs: Record<string, string>, declared: Set<string>, auto: string[]): string[] {
  const unused = Object.keys(buildArgs).filter((k) => !declared.has(k) && !auto.includes(k) && !isPredefinedArg(k)).sort();
  if (unused.length === 0) return [];
  const names = [...declared];
  const hints = unused.flatMap((k) => {
    const m = suggest(k, names, true);
    return m === undefined ? [] : [`${k} → did you mean ${m}?`];
  });
  return [`[Warning] One or more build-args [${unused.join(' ')}] were not consumed${hints.length ? ` (${hints.join('; ')})` : ''}`];
}

function declareArgs(
  cmd: ArgCommand,
  into: Map<string, string | undefined>,
  globals: Map<string, string | undefined>,
  buildArgs: Record<string, string>,
  lex: ShellLexer,
  lookup?: (n: string) => string | undefined,
): void {
  const look = lookup ?? ((n: string) => into.get(n));
  for (const a of cmd.args) {
    let value: string | undefined;
    if (Object.prototype.hasOwnProperty.call(buildArgs, a.key)) value = buildArgs[a.key];
    else if (a.value !== undefined) value = expand(lex, a.value, look, '', cmd.location.startLine);
    else if (into !== globals && globals.has(a.key)) value = globals.get(a.key);
    into.set(a.key, value);
  }
}

function expand(lex: ShellLexer, word: string, lookup: (n: string) => string | undefined, file: string, line: number): string {
  try {
    return lex.processWord(word, lookup);
  } catch (err) {
    throw new DockerfileError((err as Error).message, { file, line });
  }
}

export function findEnv(env: string[], name: string): string | undefined {
  for (let i = env.length - 1; i >= 0; i--) {
    const e = env[i]!;
    const eq = e.indexOf('=');
    if ((eq < 0 ? e : e.slice(0, eq)) === name) return eq < 0 ? '' : e.slice(eq + 1);
  }
  return undefined;
}

/**
 * A config's `Env` list with an index by name, updated in place (the config belongs to the stage being converted).
 * The list keeps Docker's order: a new name is appended, a redefined one keeps its place.
 */
class EnvIndex {
  private readonly byName = new Map<string, number>();
  constructor(private readonly c: ContainerConfig) {
    (c.Env ?? []).forEach((e, i) => {
      const eq = e.indexOf('=');
      this.byName.set(eq < 0 ? e : e.slice(0, eq), i); // the last entry of a name wins, as findEnv reads it
    });
  }
  get(name: string): string | undefined {
    const i = this.byName.get(name);
    if (i === undefined) return undefined;
    const e = this.c.Env![i]!;
    const eq = e.indexOf('=');
    return eq < 0 ? '' : e.slice(eq + 1);
  }
  set(k: string, v: string): void {
    const list = (this.c.Env ??= []);
    const i = this.byName.get(k);
    if (i !== undefined) {
      list[i] = `${k}=${v}`;
      return;
    }
    this.byName.set(k, list.length);
    list.push(`${k}=${v}`);
  }
}

function resolvePath(cwd: string, p: string): string {
  const joined = p.startsWith('/') ? p : `${cwd.replace(/\/$/, '')}/${p}`;
  const parts: string[] = [];
  for (const seg of joined.split('/')) {
    if (seg === '' || seg === '.') continue;
    if (seg === '..') parts.pop();
    else parts.push(seg);
  }
  return `/${parts.join('/')}`;
}

function shellOf(c: ContainerConfig): string[] {
  return c.Shell && c.Shell.length > 0 ? c.Shell : ['/bin/sh', '-c'];
}

function commandLine(cmd: { cmdLine: string[]; prependShell: boolean }, c: ContainerConfig): string[] {
  if (cmd.prependShell) return [...shellOf(c), cmd.cmdLine.join(' ')];
  return cmd.cmdLine;
}

function runArgs(cmd: Extract<Command, { name: 'run' }>, c: ContainerConfig): string[] {
  if (!cmd.prependShell) return cmd.cmdLine;
  let script = cmd.cmdLine.join(' ');
  if (cmd.files.length > 0) {
    const only = cmd.files.length === 1 && /^\s*\d*<<-?\s*['"]?[^\s'"]+['"]?\s*$/.test(script);
    if (only) {
      const body = cmd.files[0]!.chomp ? cmd.files[0]!.content.replace(/^\t+/gm, '') : cmd.files[0]!.content;
      if (body.startsWith('#!')) {
        // a script with its own interpreter: let the shell write and run it
        const delim = 'KILN_HEREDOC_EOF';
        return [...shellOf(c), `f=$(mktemp) && cat > "$f" <<'${delim}'\n${body}${delim}\nchmod +x "$f" && "$f"; r=$?; rm -f "$f"; exit $r`];
      }
      return [...shellOf(c), body];
    }
    // the heredocs stay part of the shell script, as the shell reads them
    const parts = [script];
    for (const h of cmd.files) parts.push(`${h.content}${h.name}`);
    script = parts.join('\n');
  }
  return [...shellOf(c), script];
}

function stageHasCmdBefore(commands: Command[], entry: Command): boolean {
  for (const c of commands) {
    if (c === entry) return false;
    if (c.name === 'cmd') return true;
  }
  return false;
}

function expandPorts(p: string, file: string, line: number): string[] {
  const m = /^(\d+)(?:-(\d+))?(?:\/(tcp|udp|sctp))?$/i.exec(p);
  if (!m) throw new DockerfileError(`invalid port "${p}" in EXPOSE`, { file, line });
  const proto = (m[3] ?? 'tcp').toLowerCase();
  const a = Number(m[1]);
  const b = m[2] ? Number(m[2]) : a;
  const out: string[] = [];
  for (let i = a; i <= b; i++) out.push(`${i}/${proto}`);
  return out;
}

function onbuildTriggers(config: ImageConfig, file: string, line: number): Command[] {
  const triggers = config.config.OnBuild ?? [];
  const out: Command[] = [];
  for (const t of triggers) {
    const parsed = parseDockerfile(`FROM scratch\n${t}\n`, { file: `${file} (ONBUILD)` });
    for (const c of parsed.stages[0]?.commands ?? []) {
      out.push({ ...c, location: { startLine: line, endLine: line } } as Command);
    }
  }
  return out;
}

function displayText(cmd: Command): string {
  return cmd.original.replace(/\s*\n\s*/g, ' ').trim();
}

function historyText(cmd: Command): string {
  const t = displayText(cmd);
  return cmd.name === 'run' ? `RUN ${t.replace(/^run\s+/i, '')} # buildkit` : `${t} # buildkit`;
}

function nodeArchToOci(a: string): string {
  return a === 'x64' ? 'amd64' : a === 'ia32' ? '386' : a;
}

export { PROXY_ARGS };
