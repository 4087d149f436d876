import type { HistoryEntry, ImageConfig } from '../oci/index.js';

/** Where a vertex came from: a Dockerfile line or an SDK call. */
export interface SourceRef {
  file: string;
  line: number;
}

/** A `RUN --mount` as plain data. */
export interface MountDef {
  type: 'cache' | 'bind' | 'tmpfs' | 'secret' | 'ssh';
  target: string;
  /** cache id / secret id */
  id?: string;
  /** bind/cache source path inside `from` */
  source?: string;
  /** vertex id whose output is the source tree (bind/cache seed); undefined = build context (bind) */
  fromVertex?: string;
  /** bind of a named local context (`--build-context NAME=DIR`, `from=NAME`) instead of the main one */
  context?: string;
  readonly?: boolean;
  sharing?: 'shared' | 'private' | 'locked';
  mode?: number;
  uid?: number;
  gid?: number;
  size?: number;
  required?: boolean;
  /** secret: expose as this env var */
  env?: string;
}

/**
 * Where the value of a build secret (`--secret id=…,src=…|env=…`) comes from: a build input beside the graph, named
 * by a secret mount's `id`. The value never enters the graph or a cache key.
 */
export interface SecretSource {
  id: string;
  file?: string;
  env?: string;
}

/**
 * A template's start command, proven at the end of its build: run in a container of the final image until its ready
 * check passes (E2B's behaviour), so a server that never comes up fails the build, not the first sandbox.
 */
export interface StartCheck {
  /** the start command: a shell command line, or an argv; none: the image's ENTRYPOINT + CMD */
  cmd?: string | string[];
  /** a shell command that exits 0 once the start command is ready; none: it must not fail within two seconds */
  readyCmd?: string;
  /** how messages name the check, e.g. `waitForPort(8000)` */
  label: string;
  /** give up (and fail the build) after this long; default 60 s */
  timeoutMs?: number;
  /** CPUs for the check's container (the template's `cpuCount`): its CPU weight, 1024 per CPU */
  cpuCount?: number;
  /** memory for the check's container in MiB (the template's `memoryMB`): its memory limit */
  memoryMB?: number;
}

export interface SourceOp {
  type: 'source';
  /** image reference as written after expansion, or 'scratch' */
  ref: string;
  platform?: string;
}

export interface ExecOp {
  type: 'exec';
  args: string[];
  env: string[];
  cwd: string;
  user: string;
  /** `isolated` is never written in a Dockerfile: the engine sets it for builds in isolated mode */
  network: 'default' | 'host' | 'none' | 'isolated';
  mounts: MountDef[];
  /** heredoc files RUN feeds to the command */
  security?: string;
  /** names of the `env` entries that are build args (ARG): cache records keep a digest of their values, never the value */
  argEnv?: string[];
}

export interface CopyOp {
  type: 'copy';
  /** 'context' for the build context; otherwise a vertex id (stage output or image source) */
  from: 'context' | { vertex: string };
  /** with `from: 'context'`: the named local context (`--build-context NAME=DIR`) read instead of the main one */
  context?: string;
  sources: string[];
  inline: Array<{ path: string; data: string }>;
  dest: string;
  workdir: string;
  chown: string;
  chmod: string;
  excludes: string[];
  parents: boolean;
  link: boolean;
  /** ADD semantics: unpack local archives, fetch URLs */
  add: boolean;
  checksum: string;
}

export interface MkdirOp {
  type: 'mkdir';
  path: string;
  user: string;
}

/** A step that changes only the image config (ENV, LABEL, CMD, ...). */
export interface MetaOp {
  type: 'meta';
  /** the instruction's effect, for the cache key and explain (e.g. {env: {K: V}}) */
  change: Record<string, unknown>;
}

export type Op = SourceOp | ExecOp | CopyOp | MkdirOp | MetaOp;

export interface Vertex {
  /** unique id within the graph */
  id: string;
  /** progress name in BuildKit's shape: `[stage 2/5] RUN echo hi` */
  name: string;
  /** stage name or index as text */
  stage: string;
  op: Op;
  /** the vertex whose filesystem this one builds on (none for a source) */
  parent?: string;
  /** other vertices whose outputs this one reads (COPY --from, mount from) */
  deps: string[];
  location?: SourceRef;
  /** always run this step (no cache lookup); later steps may still hit through early cutoff */
  noCache?: boolean;
  /** step is not shown / counted (internal) */
  hidden?: boolean;
}

export interface StageResult {
  /** the last vertex of the stage */
  vertex: string;
  /** image config (without rootfs/history, which the builder fills in) */
  config: ImageConfig;
}

/** What a front end hands to the solver. */
export interface BuildGraph {
  vertices: Map<string, Vertex>;
  /** the target stage's last vertex and its config */
  target: StageResult;
  /** order of vertices as written (for progress numbering) */
  order: string[];
  /** history entries (created_by per instruction) for the target stage chain */
  history: Array<{ createdBy: string; vertex: string | null; emptyLayer: boolean; base?: HistoryEntry }>;
  /** what the front end tells the user about its input (an unconsumed build arg), one line each */
  warnings?: string[];
}
