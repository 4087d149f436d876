/** The image history and times of a build, and the cache keys it exports. */
import type { HistoryEntry } from '../oci/index.js';
import type { BuildGraph } from '../graph/index.js';
import { closure, type VertexResult } from '../solver/index.js';
import type { Records } from './state.js';

export type GraphHistory = Array<{ createdBy: string; vertex: string | null; emptyLayer: boolean; base?: HistoryEntry }>;

export function buildHistory(hist: GraphHistory, results: Map<string, VertexResult>, createdAt: (vertex: string | null) => number): HistoryEntry[] {
  return hist.map((h) => {
    if (h.base) return h.base;
    const r = h.vertex ? results.get(h.vertex) : undefined;
    const empty = h.emptyLayer || !r || r.diffId === null;
    return { created: isoSeconds(createdAt(h.vertex)), created_by: h.createdBy, comment: 'buildkit.dockerfile.v0', ...(empty ? { empty_layer: true } : {}) };
  });
}

function isoSeconds(ms: number): string {
  return new Date(Math.floor(ms / 1000) * 1000).toISOString().replace(/\.\d{3}Z$/, 'Z');
}

/**
 * When each step's output was first produced (its cache record's `created`, which an imported record brings along),
 * clamped to SOURCE_DATE_EPOCH. As in BuildKit, a fully cached rebuild — here or on another machine that imported the
 * cache — therefore gets the same history and the same image digest.
 */
export function stepTimes(s: Records<'cacheRecords'>, results: Map<string, VertexResult>, epoch: number | undefined): (vertex: string | null) => number {
  const now = Date.now();
  const memo = new Map<string | null, number>();
  return (vertex) => {
    const known = memo.get(vertex);
    if (known !== undefined) return known;
    const r = vertex ? results.get(vertex) : undefined;
    const t = (r && s.db.cacheRecords.getCacheCreated(r.key)) ?? now;
    const out = epoch !== undefined ? Math.min(t, epoch * 1000) : t;
    memo.set(vertex, out);
    return out;
  };
}

/** The image's `created`: SOURCE_DATE_EPOCH, else the latest of its steps' times (now for an image without steps). */
export function imageCreated(hist: GraphHistory, createdAt: (vertex: string | null) => number, epoch: number | undefined): string {
  if (epoch !== undefined) return isoSeconds(epoch * 1000);
  const own = hist.filter((h) => !h.base);
  // a loop, not Math.max(...spread): an image of 55,000 steps would overflow the argument list
  let latest = -Infinity;
  for (const h of own) latest = Math.max(latest, createdAt(h.vertex));
  return isoSeconds(own.length ? latest : Date.now());
}

/**
 * Cache keys to export: `min` are the steps of the final image's chain (target and its parents), `max` every step
 * solved, in dependency order. Sources have no record and are left out.
 */
export function cacheKeys(graph: BuildGraph, results: Map<string, VertexResult>): { min: string[]; max: string[] } {
  const isStep = (id: string): boolean => graph.vertices.get(id)?.op.type !== 'source' && results.has(id);
  const chain: string[] = [];
  for (let id: string | undefined = graph.target.vertex; id; id = graph.vertices.get(id)?.parent ?? undefined) if (isStep(id)) chain.push(results.get(id)!.key);
  chain.reverse(); // (push + reverse: unshift per step is quadratic on long chains)
  const max = closure(graph.vertices, graph.target.vertex).filter(isStep).map((id) => results.get(id)!.key);
  return { min: chain, max };
}
