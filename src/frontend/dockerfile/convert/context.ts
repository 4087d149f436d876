import { DockerfileError } from '../../../errors/index.js';
import type { ContainerConfig, ImageConfig } from '../../../oci/index.js';
import type { BuildGraph, GraphBuilder, Op, SourceRef, Vertex } from '../../../graph/index.js';
import type { Command, Stage } from '../instructions/index.js';
import type { ShellLexer } from '../shell/index.js';
import type { ConvertOptions } from './types.js';
import { stageIndex } from './stages.js';
import { namedContext } from './named-context.js';
import { expand, historyText, type EnvIndex } from './words.js';

/** A converted stage: where its chain ends and the image config it has built up. */
export interface StageState {
  stage: Stage;
  /** last vertex of the stage */
  vertex: string;
  config: ImageConfig;
  /** history entries of this stage chain (inherited from a parent stage) */
  history: BuildGraph['history'];
}

/** What the whole conversion shares: the options, the graph being built and the stages converted so far. */
export interface BuildContext {
  opts: ConvertOptions;
  file: string;
  lex: ShellLexer;
  platform: { os: string; architecture: string; variant?: string };
  globalArgs: Map<string, string | undefined>;
  /** the graph being built (the build-wide options applied to every vertex it adds) */
  graph: GraphBuilder;
  /** converted stages by index; undefined for a stage the target does not need */
  stages: Array<StageState | undefined>;
  byName: Map<string, number>;
  /** ARG names declared in the global scope and the stages built: a build arg outside them is not consumed */
  declared: Set<string>;
  /** `--build-context` names a FROM, COPY --from or RUN --mount from= used */
  usedContexts: Set<string>;
  /** the records of program steps that always run (`ConvertOptions.steps` with `noCache`) */
  programNoCache: Set<Command>;
}

/** One stage being converted. */
export interface StageContext {
  build: BuildContext;
  index: number;
  stage: Stage;
  state: StageState;
  /** the stage's container config, edited in place */
  c: ContainerConfig;
  env: EnvIndex;
  stageArgs: Map<string, string | undefined>;
  /** lookup for word expansion: ENV wins over ARG */
  lookup(name: string): string | undefined;
  /** the stage's instructions (ONBUILD triggers first) */
  commands: Command[];
  noCache: boolean;
}

/** One instruction of a stage, with the step name progress shows. */
export interface Step<C extends Command = Command> {
  s: StageContext;
  cmd: C;
  name: string;
  /** where the step comes from: its Dockerfile line, or the SDK caller's file and line */
  location: SourceRef;
  /** this step always runs (the SDK's `skipCache()`) */
  noCache?: boolean;
}

/** The stage's name as vertices carry it (its index when unnamed). */
export function stageLabel(s: StageContext): string {
  return s.stage.name || String(s.index);
}

/** A word of the instruction with the stage's variables expanded. */
export function ex(st: Step, word: string): string {
  return expand(st.s.build.lex, word, st.s.lookup, st.location.file, st.location.line);
}

/** The instruction's location for errors. */
export function loc(st: Step): SourceRef {
  return st.location;
}

/** Append a vertex for the step to the stage's chain. */
export function addVertex(st: Step, op: Op, extra: Partial<Vertex> = {}): string {
  const { build, state } = st.s;
  const id = build.graph.add({
    name: st.name,
    stage: stageLabel(st.s),
    op,
    parent: state.vertex,
    deps: [],
    location: loc(st),
    ...(st.s.noCache || st.noCache ? { noCache: true } : {}),
    ...extra,
  });
  state.vertex = id;
  return id;
}

/** A step that changes only the image config. */
export function addMeta(st: Step, change: Record<string, unknown>): void {
  const id = addVertex(st, { type: 'meta', change });
  st.s.state.history.push({ createdBy: historyText(st.cmd), vertex: id, emptyLayer: true });
}

/** A step that writes a layer, with its history entry. */
export function addLayerStep(st: Step, op: Op, extra: Partial<Vertex> = {}): void {
  const id = addVertex(st, op, extra);
  st.s.state.history.push({ createdBy: historyText(st.cmd), vertex: id, emptyLayer: false });
}

/** A hidden source vertex for an image named by `COPY --from` or `RUN --mount from=`. */
export async function imageSourceVertex(build: BuildContext, ref: string): Promise<string> {
  const resolved = await build.opts.images.resolve(ref, { signal: build.opts.signal });
  return build.graph.add({ name: `[internal] load ${resolved.ref}`, stage: '', op: { type: 'source', ref: resolved.ref }, deps: [], hidden: true });
}

/**
 * The last vertex of an earlier stage, or of the image `ref` names; a named image context (`--build-context
 * NAME=docker-image://REF`) stands in for either. Named local contexts are read in place (see {@link localContextRef}).
 */
export async function fromVertex(st: Step, ref: string, what: string): Promise<string> {
  const { build, index } = st.s;
  const idx = stageIndex(ref, build.byName, index);
  if (idx === undefined) {
    // a stage a context replaced is already that context's image (converted as the stage)
    const named = namedContext(build, ref);
    return imageSourceVertex(build, named?.context.type === 'image' ? named.context.ref : ref);
  }
  const stage = build.stages[idx];
  if (!stage) throw new DockerfileError(`${what}=${ref}: stage is not built`, loc(st));
  return stage.vertex;
}

/** The name of the named local context (`--build-context NAME=DIR`) `ref` stands for, read in place by COPY and binds. */
export function localContextRef(st: Step, ref: string): string | undefined {
  const named = namedContext(st.s.build, ref);
  return named?.context.type === 'local' ? named.name : undefined;
}
