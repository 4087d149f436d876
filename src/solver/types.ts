import type { Digest } from '../oci/index.js';
import type { BuildGraph, Vertex } from '../graph/index.js';

/** What a finished vertex hands to the vertices that depend on it. */
export interface VertexResult {
  vertex: string;
  /** the cache key it was looked up / recorded under */
  key: string;
  /** identity of the output filesystem (what dependants are keyed on) */
  outputId: string;
  /** diffIds of every layer of the output, bottom first */
  layers: Digest[];
  /** the layer this vertex added, if any */
  diffId: Digest | null;
  cached: boolean;
  durationMs: number;
  /** the inputs the key was computed from */
  inputs: Record<string, unknown>;
  /** for a source: the image manifest */
  manifest?: Digest;
  /** a hit that came from the remote cache (`remote` of the solve options) */
  remote?: boolean;
}

/** Context the runner gets for one vertex. */
export interface RunContext {
  parent: VertexResult | undefined;
  deps: Map<string, VertexResult>;
  log(stream: 'stdout' | 'stderr', chunk: Buffer): void;
  signal: AbortSignal;
}

/** Implemented by ops: resolves sources, computes content inputs, executes vertices. */
export interface OpRunner {
  /** A source vertex: resolve the image (pulling or loading as needed). */
  resolveSource(v: Vertex, ctx: RunContext): Promise<{ manifest: Digest | 'scratch'; layers: Digest[] }>;
  /** Extra key inputs from content (a checksum of the context files a COPY reads), computed before lookup. */
  contentInputs(v: Vertex, ctx: RunContext): Promise<Record<string, unknown>>;
  /** Run the vertex for real; returns the layer it produced, or null. */
  execute(v: Vertex, ctx: RunContext): Promise<{ diffId: Digest; contentId: string } | null>;
  /** Is the recorded layer still usable (blob present, intact enough to trust)? */
  layerUsable(diffId: Digest): Promise<{ contentId: string } | undefined>;
}

/** Cache records as the solver needs them. */
export interface CacheIndex {
  get(key: string): { outputId: string; diffId: Digest | null; inputs: Record<string, unknown> } | undefined;
  put(rec: { key: string; outputId: string; diffId: Digest | null; name: string; inputs: Record<string, unknown> }): void;
  touch(key: string): void;
}

/**
 * A cache shared with other machines, consulted per step (`--cache-registry`): on a local miss the solver asks it to
 * bring the key's record and layer into the local cache (verified), then looks the key up locally again; every step
 * whose record is final is offered back to it. Implementations do their transfers off the solver's path: `publish`
 * returns at once, and whoever made the cache waits for its pushes before the build is reported done.
 */
export interface RemoteCache {
  /** true when the key's record (and its layer) is now in the local cache */
  fetch(key: string, o: { signal: AbortSignal }): Promise<boolean>;
  /**
   * The step's record is in the local cache: share it. `cached`: a local hit (the shared cache may have it already);
   * otherwise the step ran. Remote hits are not offered back.
   */
  publish(step: { key: string; cached: boolean }): void;
}

export type SolveEvent =
  | { type: 'start'; vertex: Vertex; at: number }
  | { type: 'cached'; vertex: Vertex; result: VertexResult }
  | { type: 'log'; vertex: Vertex; stream: 'stdout' | 'stderr'; data: Buffer }
  | { type: 'done'; vertex: Vertex; result: VertexResult }
  | { type: 'error'; vertex: Vertex; error: unknown };

export interface SolveOptions {
  graph: BuildGraph;
  runner: OpRunner;
  cache: CacheIndex;
  /** a shared cache asked on local misses, told about finished steps */
  remote?: RemoteCache;
  /** how many steps run at once (default 4) */
  concurrency?: number;
  /** SOURCE_DATE_EPOCH (seconds): enters the key of every step whose recipe writes a layer */
  sourceDateEpoch?: number;
  onEvent?: (e: SolveEvent) => void;
  signal?: AbortSignal;
}
