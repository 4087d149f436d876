import type { Digest } from '../oci/index.js';

/** A cache record as it travels between machines (cache export and import): no local bookkeeping. */
export interface PortableCacheRecord {
  key: string;
  /** identity of the step's output (what later steps are keyed on) */
  outputId: string;
  /** the layer the step produced, or null for a step without a filesystem change */
  diffId: Digest | null;
  /** human name of the step when it was recorded */
  name: string;
  /** the inputs the key was made from, for explaining misses */
  inputs: Record<string, unknown>;
  /** when the output was first produced (ms); history `created` of cache hits comes from it */
  created: number;
}

/** A row of the `cache` table: the portable record and when and how often this machine used it. */
export interface CacheRecord extends PortableCacheRecord {
  lastUsed: number;
  useCount: number;
}

/** Cache records: a step's cache key, its output and the inputs the key was made from (`cache` table). */
export interface CacheRecordRepo {
  getCache(key: string): CacheRecord | undefined;
  /** Only the `created` time of a cache record (no JSON parse of its inputs). */
  getCacheCreated(key: string): number | undefined;
  /**
   * `created` (default now) is when this output was first produced: kept while a re-run gives the same output and
   * layer, reset when it gives another. Imported records bring their own.
   */
  putCache(rec: Omit<CacheRecord, 'created' | 'lastUsed' | 'useCount'> & { created?: number }): void;
  /** a cache hit: last used now, one more use */
  touchCache(key: string): void;
  deleteCache(key: string): void;
  /** by last use, oldest first; each record's inputs are read when first asked for */
  listCache(): CacheRecord[];
  /** Cache records whose layer is `diffId`. */
  countCacheByDiffId(diffId: string): number;
}
