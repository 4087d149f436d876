import { DockerfileError } from '../../../errors/index.js';
import { DEFAULT_PATH } from '../../../oci/index.js';
import { createGraphBuilder, type BuildGraph } from '../../../graph/index.js';
import { withLangCache } from '../../../langcache/index.js';
import { parse } from '../parser/index.js';
import { parseDockerfileFromResult, type Command, type Stage } from '../instructions/index.js';
import { createShellLexer } from '../shell/index.js';
import { stageLabel, type BuildContext, type StageContext, type StageState, type Step } from './context.js';
import { dispatch } from './dispatch.js';
import { checkInstructionLimit, neededStages, onbuildTriggers, resolveTarget, stageNames } from './stages.js';
import type { ConvertOptions, NamedContext } from './types.js';
import { hasNamedContext, localContextBase, namedContext, unusedContextsWarning } from './named-context.js';
import { declareArgs, displayText, EnvIndex, expand, unconsumedArgsWarning } from './words.js';

/**
 * Turn a Dockerfile into a build graph. Pure apart from the image resolver. The text is parsed once (syntax tree,
 * then typed instructions); each stage the target needs is converted instruction by instruction ({@link dispatch}).
 */
export async function convertDockerfile(opts: ConvertOptions): Promise<BuildGraph> {
  const { file } = opts;
  const pr = parse(opts.text, { file });
  const df = parseDockerfileFromResult(pr, { file });
  const lex = createShellLexer({ escapeToken: pr.escapeToken });
  if (df.stages.length === 0) throw new DockerfileError('no FROM instruction: a Dockerfile must start with FROM', { file, line: 1 });
  // the SDK's steps: typed records, dispatched as they are
  const programNoCache = new Set<Command>();
  for (const st of opts.steps ?? []) {
    df.stages.at(-1)!.commands.push(...st.commands);
    if (st.noCache) for (const c of st.commands) programNoCache.add(c);
  }
  checkInstructionLimit(df.stages, file);

  const platform = opts.platform ?? { os: 'linux', architecture: nodeArchToOci(process.arch) };
  // global ARGs (before the first FROM)
  const autoArgs = automaticArgs(platform);
  const globalArgs = new Map<string, string | undefined>(Object.entries(autoArgs));
  for (const a of df.metaArgs) declareArgs(a, globalArgs, globalArgs, opts.buildArgs, lex);

  const build: BuildContext = {
    opts, file, lex, platform, globalArgs,
    graph: createGraphBuilder({ ...(opts.network ? { network: opts.network } : {}), ...(opts.allowHostNetwork ? { allowHostNetwork: true } : {}) }),
    stages: [], byName: stageNames(df.stages, file),
    declared: new Set(df.metaArgs.flatMap((a) => a.args.map((x) => x.key))),
    usedContexts: new Set(),
    programNoCache,
  };
  const targetIndex = resolveTarget(df.stages, opts.target, file);
  // a stage a named context replaces (`--build-context NAME=...` for `AS NAME`) is not built, nor what it needs
  const replaced = (st: Stage): boolean => st.name !== '' && hasNamedContext(opts.namedContexts, st.name);
  const needed = neededStages(df.stages, targetIndex, build.byName, globalArgs, lex, replaced);
  for (let si = 0; si <= targetIndex; si++) {
    build.stages.push(needed.has(si) ? await convertStage(build, df.stages[si]!, si, df.stages.length) : undefined);
  }
  const target = build.stages[targetIndex]!;
  const warnings = [...unconsumedArgsWarning(opts.buildArgs, build.declared, Object.keys(autoArgs)), ...unusedContextsWarning(build)];
  const graph: BuildGraph = { vertices: build.graph.vertices, order: build.graph.order, target: { vertex: target.vertex, config: target.config }, history: target.history, ...(warnings.length ? { warnings } : {}) };
  return opts.langCache ? withLangCache(graph, opts.langCache) : graph;
}

/** TARGETPLATFORM, BUILDARCH and the rest, as BuildKit defines them. */
function automaticArgs(platform: { os: string; architecture: string; variant?: string }): Record<string, string> {
  const platformStr = `${platform.os}/${platform.architecture}${platform.variant ? `/${platform.variant}` : ''}`;
  return {
    TARGETPLATFORM: platformStr, TARGETOS: platform.os, TARGETARCH: platform.architecture, TARGETVARIANT: platform.variant ?? '',
    BUILDPLATFORM: platformStr, BUILDOS: platform.os, BUILDARCH: platform.architecture, BUILDVARIANT: platform.variant ?? '',
  };
}

/** One stage: its FROM, then each instruction (ONBUILD triggers of the base first), numbered as progress shows them. */
async function convertStage(build: BuildContext, stage: Stage, si: number, total: number): Promise<StageState> {
  const { opts } = build;
  const prefix = total > 1 || stage.name ? `${stage.name || `stage-${si}`} ` : '';
  const replaced = stage.name ? namedContext(build, stage.name) : undefined;
  const state = await dispatchFrom(build, stage, si, replaced);
  const c = state.config.config;
  const env = new EnvIndex(c);
  const stageArgs = new Map<string, string | undefined>();
  const commands = replaced ? [] : [...onbuildTriggers(state.config, build.file, stage.from.location.startLine), ...stage.commands];
  if (c.OnBuild) c.OnBuild = null;
  const s: StageContext = {
    build, index: si, stage, state, c, env, stageArgs, commands,
    // name → index in c.Env: ENV and lookups cost O(1), not a scan or copy of the whole list per instruction
    lookup: (name) => env.get(name) ?? (stageArgs.has(name) ? stageArgs.get(name) : undefined),
    noCache: opts.noCache === true || (opts.noCacheFilter ?? []).some((f) => f === stage.name || f === String(si)),
  };
  const stepsTotal = commands.filter((x) => x.name !== 'arg').length + 1;
  const base = build.graph.vertices.get(state.vertex)!;
  if (base.op.type === 'source' && base.stage === stageLabel(s)) base.name = `[${prefix}1/${stepsTotal}] ${base.name}`;
  let step = 1;
  for (const cmd of commands) {
    if (cmd.name !== 'arg') step++;
    const st: Step = {
      s, cmd, name: `[${prefix}${step}/${stepsTotal}] ${displayText(cmd)}`,
      // a program step's record names its own file (the SDK caller's); a Dockerfile's names only its line
      location: { file: cmd.location.file ?? build.file, line: cmd.location.startLine },
      ...(build.programNoCache.has(cmd) ? { noCache: true } : {}),
    };
    await dispatch(st);
  }
  return state;
}

/**
 * FROM: a named context (`--build-context`: one replacing the whole stage, or one the base names), an earlier stage
 * (its chain and config continue), `scratch`, or an image the resolver finds.
 */
async function dispatchFrom(build: BuildContext, stage: Stage, si: number, replaced?: { name: string; context: NamedContext }): Promise<StageState> {
  const { file, platform } = build;
  const line = stage.from.location.startLine;
  const label = stage.name || String(si);
  const written = expand(build.lex, stage.from.image, (name) => build.globalArgs.get(name), file, line);
  const named = replaced ?? namedContext(build, written);
  if (named?.context.type === 'local') return localContextBase(build, stage, label, named.name);
  const baseRef = named?.context.type === 'image' ? named.context.ref : written;
  const parentStageIdx = named ? undefined : build.byName.get(baseRef.toLowerCase()) ?? (/^\d+$/.test(baseRef) && Number(baseRef) < si ? Number(baseRef) : undefined);
  if (parentStageIdx !== undefined && parentStageIdx < si) {
    const ps = build.stages[parentStageIdx]!;
    return { stage, vertex: ps.vertex, config: structuredClone(ps.config), history: [...ps.history] };
  }
  const source = (name: string, ref: string): string => build.graph.add({ name, stage: label, op: { type: 'source', ref }, deps: [], location: { file, line } });
  if (!named && baseRef.toLowerCase() === 'scratch') {
    const vertex = source(`FROM ${baseRef}`, 'scratch');
    const config = { architecture: platform.architecture, os: platform.os, config: { Env: [`PATH=${DEFAULT_PATH}`] }, rootfs: { type: 'layers' as const, diff_ids: [] } };
    return { stage, vertex, config, history: [] };
  }
  let resolved;
  try {
    resolved = await build.opts.images.resolve(baseRef, { signal: build.opts.signal });
  } catch (err) {
    const e = err as { message?: string };
    throw new DockerfileError(`FROM ${baseRef}: ${e.message ?? String(err)}`, { file, line }, { code: 'ERR_KILN_IMAGE_NOT_FOUND', cause: err });
  }
  const vertex = source(`FROM ${resolved.ref}`, resolved.ref);
  const config = structuredClone(resolved.config);
  config.config = config.config ?? {};
  const history = (config.history ?? []).map((h) => ({ createdBy: h.created_by ?? '', vertex: null, emptyLayer: h.empty_layer === true, base: h }));
  return { stage, vertex, config, history };
}

function nodeArchToOci(a: string): string {
  return a === 'x64' ? 'amd64' : a === 'ia32' ? '386' : a;
}

export { findEnv, PROXY_ARGS } from './words.js';
export { MAX_INSTRUCTIONS } from './stages.js';
