import path from 'node:path';
import type { ResolvedSources } from '../context/index.js';
import type { Digest } from '../oci/index.js';
import type { RunContext } from '../solver/index.js';
import type { ActiveSnapshot } from '../cache/index.js';
import type { OpsOptions } from './types.js';

/** What a step leaves: its layer (diffId and contentId), or null when it changed no file. */
export type StepOutput = { diffId: Digest; contentId: string } | null;

/** What the op implementations of one runner share. */
export interface OpEnv {
  o: OpsOptions;
  /** each COPY/ADD's sources, resolved once for its key and handed to its copy */
  resolvedSources: Map<string, ResolvedSources>;
  /** uncompressed bytes of the layers this build wrote so far (counted against `limits.diskBytes`) */
  disk: { used: number };
}

/** Commit a step's snapshot into a layer through the cache, counting its bytes against the build's disk limit. */
export async function commitStep(env: OpEnv, snap: ActiveSnapshot, signal: AbortSignal, contextCopy = false): Promise<StepOutput> {
  const { o } = env;
  const layer = await o.cache.commit(snap, {
    signal,
    ...(contextCopy ? { chunkCacheDir: path.join(o.stateDir, 'layer-chunks') } : {}),
    ...(o.sourceDateEpoch !== undefined ? { sourceDateEpoch: o.sourceDateEpoch } : {}),
  });
  if (!layer) return null;
  env.disk.used += layer.uncompressedSize;
  return { diffId: layer.diffId, contentId: layer.contentId };
}

/** Mount another vertex's output (read-only use) until `release`. */
export async function mountVertexOutput(env: OpEnv, vertexId: string, ctx: RunContext): Promise<{ root: string; release(): Promise<void> }> {
  const dep = ctx.deps.get(vertexId);
  if (!dep) throw new Error(`missing dependency ${vertexId}`);
  const snap = await env.o.cache.mount(dep.layers);
  return { root: snap.mountpoint, release: () => snap.release() };
}
