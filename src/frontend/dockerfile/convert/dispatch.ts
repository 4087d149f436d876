/**
 * One function per Dockerfile instruction (as BuildKit's dispatchRun, dispatchCopy, …): each reads its typed
 * instruction, edits the stage's config and appends the vertex it needs. {@link dispatch} picks the function.
 */
import { DockerfileError } from '../../../errors/index.js';
import type { ContainerConfig } from '../../../oci/index.js';
import type { CopyOp, ExecOp, MountDef } from '../../../graph/index.js';
import type {
  ArgCommand, CmdCommand, Command, CopyCommand, EntrypointCommand, EnvCommand, ExposeCommand, HealthcheckCommand, LabelCommand,
  MaintainerCommand, OnbuildCommand, RunCommand, ShellCommand, StopSignalCommand, UserCommand, VolumeCommand, WorkdirCommand,
} from '../instructions/index.js';
import { addLayerStep, addMeta, ex, fromVertex, loc, localContextRef, type Step } from './context.js';
import { parseMount } from './mounts.js';
import { commandLine, declareArgs, expandPorts, resolvePath, runArgs, stageHasCmdBefore } from './words.js';

/** Convert one instruction of a stage. */
export async function dispatch(st: Step): Promise<void> {
  const cmd = st.cmd;
  const at = <C extends Command>(c: C): Step<C> => ({ ...st, cmd: c });
  switch (cmd.name) {
    case 'arg': return dispatchArg(at(cmd));
    case 'env': return dispatchEnv(at(cmd));
    case 'label': return dispatchLabel(at(cmd));
    case 'maintainer': return dispatchMaintainer(at(cmd));
    case 'workdir': return dispatchWorkdir(at(cmd));
    case 'user': return dispatchUser(at(cmd));
    case 'expose': return dispatchExpose(at(cmd));
    case 'volume': return dispatchVolume(at(cmd));
    case 'stopsignal': return dispatchStopSignal(at(cmd));
    case 'shell': return dispatchShell(at(cmd));
    case 'onbuild': return dispatchOnbuild(at(cmd));
    case 'cmd': return dispatchCmd(at(cmd));
    case 'entrypoint': return dispatchEntrypoint(at(cmd));
    case 'healthcheck': return dispatchHealthcheck(at(cmd));
    case 'run': return dispatchRun(at(cmd));
    case 'copy':
    case 'add': return dispatchCopy(at(cmd));
    default: {
      const never: never = cmd;
      throw new DockerfileError(`unsupported instruction ${(never as Command).name}`, loc(st));
    }
  }
}

/** ARG changes no output; its value reaches RUN steps through their env. */
function dispatchArg(st: Step<ArgCommand>): void {
  const { s } = st;
  declareArgs(st.cmd, s.stageArgs, s.build.globalArgs, s.build.opts.buildArgs, s.build.lex, s.lookup);
  for (const a of st.cmd.args) s.build.declared.add(a.key);
}

function dispatchEnv(st: Step<EnvCommand>): void {
  const kv: Record<string, string> = {};
  for (const e of st.cmd.env) {
    const k = ex(st, e.key);
    const v = ex(st, e.value);
    st.s.env.set(k, v);
    kv[k] = v;
  }
  addMeta(st, { env: kv });
}

function dispatchLabel(st: Step<LabelCommand>): void {
  const c = st.s.c;
  const kv: Record<string, string> = {};
  for (const l of st.cmd.labels) {
    const k = ex(st, l.key);
    const v = ex(st, l.value);
    c.Labels = { ...(c.Labels ?? {}), [k]: v };
    kv[k] = v;
  }
  addMeta(st, { label: kv });
}

function dispatchMaintainer(st: Step<MaintainerCommand>): void {
  const config = st.s.state.config;
  config.author = ex(st, st.cmd.maintainer);
  addMeta(st, { maintainer: config.author });
}

function dispatchWorkdir(st: Step<WorkdirCommand>): void {
  const c = st.s.c;
  const raw = ex(st, st.cmd.path);
  const p = resolvePath(c.WorkingDir ?? '/', raw);
  // as BuildKit: an absolute path is kept as written (a trailing '/' stays), a relative one is joined and cleaned
  c.WorkingDir = raw.startsWith('/') ? raw : p;
  addLayerStep(st, { type: 'mkdir', path: p, user: c.User ?? '' });
}

function dispatchUser(st: Step<UserCommand>): void {
  st.s.c.User = ex(st, st.cmd.user);
  addMeta(st, { user: st.s.c.User });
}

function dispatchExpose(st: Step<ExposeCommand>): void {
  const { c, build, lookup } = st.s;
  const ports: string[] = [];
  for (const p of st.cmd.ports) for (const w of build.lex.processWords(p, lookup)) ports.push(...expandPorts(w, st.location.file, st.location.line));
  c.ExposedPorts = { ...(c.ExposedPorts ?? {}) };
  for (const p of ports) c.ExposedPorts[p] = {};
  addMeta(st, { expose: ports });
}

function dispatchVolume(st: Step<VolumeCommand>): void {
  const c = st.s.c;
  c.Volumes = { ...(c.Volumes ?? {}) };
  const vols = st.cmd.volumes.map((v) => ex(st, v));
  for (const v of vols) {
    if (v.trim() === '') throw new DockerfileError('VOLUME specified can not be an empty string', loc(st));
    c.Volumes[v] = {};
  }
  addMeta(st, { volume: vols });
}

function dispatchStopSignal(st: Step<StopSignalCommand>): void {
  st.s.c.StopSignal = ex(st, st.cmd.signal);
  addMeta(st, { stopsignal: st.s.c.StopSignal });
}

function dispatchShell(st: Step<ShellCommand>): void {
  st.s.c.Shell = st.cmd.shell;
  addMeta(st, { shell: st.cmd.shell });
}

function dispatchOnbuild(st: Step<OnbuildCommand>): void {
  const c = st.s.c;
  c.OnBuild = [...(c.OnBuild ?? []), st.cmd.expression];
  addMeta(st, { onbuild: st.cmd.expression });
}

function dispatchCmd(st: Step<CmdCommand>): void {
  st.s.c.Cmd = commandLine(st.cmd, st.s.c);
  addMeta(st, { cmd: st.s.c.Cmd });
}

function dispatchEntrypoint(st: Step<EntrypointCommand>): void {
  const c = st.s.c;
  c.Entrypoint = commandLine(st.cmd, c);
  // Docker: a new ENTRYPOINT drops a CMD inherited from the base
  if (!stageHasCmdBefore(st.s.commands, st.cmd)) c.Cmd = null;
  addMeta(st, { entrypoint: c.Entrypoint });
}

function dispatchHealthcheck(st: Step<HealthcheckCommand>): void {
  const { c } = st.s;
  const cmd = st.cmd;
  const hc = { ...(c.Healthcheck ?? {}) } as NonNullable<ContainerConfig['Healthcheck']>;
  hc.Test = cmd.test;
  if (cmd.interval) hc.Interval = cmd.interval; else delete hc.Interval;
  if (cmd.timeout) hc.Timeout = cmd.timeout; else delete hc.Timeout;
  if (cmd.startPeriod) hc.StartPeriod = cmd.startPeriod; else delete hc.StartPeriod;
  if (cmd.startInterval) hc.StartInterval = cmd.startInterval; else delete hc.StartInterval;
  if (cmd.retries) hc.Retries = cmd.retries; else delete hc.Retries;
  c.Healthcheck = hc;
  addMeta(st, { healthcheck: hc });
}

async function dispatchRun(st: Step<RunCommand>): Promise<void> {
  const { c, env, stageArgs } = st.s;
  const cmd = st.cmd;
  const runEnv = [...(c.Env ?? [])];
  const argEnv: string[] = [];
  for (const [k, v] of stageArgs) {
    if (v === undefined || env.get(k) !== undefined) continue;
    runEnv.push(`${k}=${v}`);
    argEnv.push(k);
  }
  const args = runArgs(cmd, c);
  if (args.length === 0 || args[0] === '') throw new DockerfileError('RUN needs a command: the exec form names no program (`RUN []`)', loc(st));
  const mounts: MountDef[] = [];
  const deps: string[] = [];
  for (const m of cmd.mounts) {
    const md = parseMount(ex(st, m), loc(st));
    const local = md.fromStage !== undefined ? localContextRef(st, md.fromStage) : undefined;
    if (local !== undefined) {
      if (md.def.type !== 'bind') throw new DockerfileError(`RUN --mount=type=${md.def.type},from=${md.fromStage}: a named local context can only be bind-mounted`, loc(st), { code: 'ERR_KILN_NOT_SUPPORTED' });
      md.def.context = local;
    } else if (md.fromStage !== undefined) {
      md.def.fromVertex = await fromVertex(st, md.fromStage, 'RUN --mount from');
      deps.push(md.def.fromVertex);
    }
    mounts.push(md.def);
  }
  const network = (cmd.network || 'default') as ExecOp['network'];
  if (!['default', 'none', 'host'].includes(network)) throw new DockerfileError(`unsupported network mode "${cmd.network}"`, loc(st));
  if (cmd.security && cmd.security !== 'sandbox' && !(cmd.security === 'insecure' && st.s.build.opts.allowInsecure)) {
    throw new DockerfileError(`RUN --security=${cmd.security} is not allowed (kiln runs every step sandboxed)`, loc(st), {
      code: 'ERR_KILN_NOT_SUPPORTED',
      ...(cmd.security === 'insecure' ? { hint: 'a server can allow it in its config (allowInsecure)' } : {}),
    });
  }
  const op: ExecOp = {
    type: 'exec',
    args,
    env: runEnv,
    ...(argEnv.length > 0 ? { argEnv } : {}),
    cwd: c.WorkingDir || '/',
    user: c.User ?? '',
    network,
    mounts,
    ...(cmd.security ? { security: cmd.security } : {}),
  };
  addLayerStep(st, op, { deps });
}

async function dispatchCopy(st: Step<CopyCommand>): Promise<void> {
  const cmd = st.cmd;
  const c = st.s.c;
  const x = (w: string): string => ex(st, w);
  let from: CopyOp['from'] = 'context';
  const deps: string[] = [];
  const local = cmd.from ? localContextRef(st, x(cmd.from)) : undefined;
  if (cmd.from && local === undefined) {
    from = { vertex: await fromVertex(st, x(cmd.from), 'COPY --from') };
    deps.push(from.vertex);
  }
  if (cmd.sources.length === 0 && cmd.sourceContents.length === 0) throw new DockerfileError(`${cmd.name.toUpperCase()} requires at least two arguments`, loc(st));
  const op: CopyOp = {
    type: 'copy',
    from,
    ...(local !== undefined ? { context: local } : {}),
    sources: cmd.sources.map(x),
    inline: cmd.sourceContents.map((s) => ({ path: s.path, data: s.expand ? x(s.data) : s.data })),
    dest: x(cmd.dest),
    workdir: c.WorkingDir || '/',
    chown: cmd.chown ? x(cmd.chown) : '',
    chmod: cmd.chmod ? x(cmd.chmod) : '',
    excludes: cmd.excludes.map(x),
    parents: cmd.parents,
    link: cmd.link,
    add: cmd.name === 'add',
    checksum: cmd.checksum ? x(cmd.checksum) : '',
  };
  if (cmd.name === 'add' && cmd.keepGitDir !== undefined) {
    throw new DockerfileError('ADD --keep-git-dir is not supported by kiln (git sources are not supported)', loc(st), { code: 'ERR_KILN_NOT_SUPPORTED' });
  }
  if (op.chmod && !/^[0-7]{3,4}$/.test(op.chmod)) throw new DockerfileError(`invalid --chmod value "${op.chmod}": use octal such as 0755`, loc(st));
  addLayerStep(st, op, { deps });
}
