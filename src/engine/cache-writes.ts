/** The cache records of one build: batched writes, and lookups that put a hit's layer under the build's lease. */
import type { Digest } from '../oci/index.js';
import type { CacheIndex } from '../solver/index.js';
import type { BuildLease } from '../cache/index.js';
import type { CacheRecordRepo } from '../metadata/index.js';
import type { Records } from './state.js';

export interface CacheWriteBatch {
  put(rec: Parameters<CacheRecordRepo['putCache']>[0]): void;
  touch(key: string): void;
  pending(key: string): { outputId: string; diffId: Digest | null; inputs: Record<string, unknown> } | undefined;
  flush(): void;
}

/**
 * Cache-record writes of one build: records of config-only steps and use-count touches are committed together in one
 * transaction per turn of the event loop rather than one commit per step (55,000 ENV steps were 55,000 commits); any
 * other record is committed at once, with what is pending. A crash before a flush loses only config-only records
 * (cheap to redo), never trust.
 */
export function createCacheWriteBatch(s: Records<'cacheRecords' | 'transaction'>, o: { batch: boolean }): CacheWriteBatch {
  const puts = new Map<string, Parameters<CacheRecordRepo['putCache']>[0]>();
  const touches = new Set<string>();
  let scheduled: NodeJS.Immediate | undefined;
  const flush = (): void => {
    if (scheduled) clearImmediate(scheduled);
    scheduled = undefined;
    if (puts.size === 0 && touches.size === 0) return;
    // cleared only once committed: after a failed commit the final flush tries these writes again
    s.db.transaction(() => {
      for (const r of puts.values()) s.db.cacheRecords.putCache(r);
      for (const k of touches) s.db.cacheRecords.touchCache(k);
    });
    puts.clear();
    touches.clear();
  };
  const schedule = (): void => {
    // an error here (disk full) surfaces at the final flush of the build, which repeats the writes that are left
    scheduled ??= setImmediate(() => {
      scheduled = undefined;
      try {
        flush();
      } catch {
        /* reported by the final flush */
      }
    });
  };
  return {
    put(rec) {
      puts.set(rec.key, rec);
      // only records of config-only steps (ENV, LABEL, ...) wait for the batch; a step that ran is committed before
      // it is reported done, so a build killed right after still reuses it
      if (o.batch && (rec.inputs.op as { type?: unknown } | undefined)?.type === 'meta') schedule();
      else flush();
    },
    touch(key) {
      touches.add(key);
      schedule();
    },
    pending: (key) => puts.get(key),
    flush,
  };
}

/** Cache records as the solver reads them: pending writes first; a hit's layer joins the build's lease. */
export function leasedCacheIndex(s: Records<'cacheRecords' | 'transaction'>, writes: CacheWriteBatch, lease: BuildLease): CacheIndex {
  return {
    get: (k) => {
      const pending = writes.pending(k);
      if (pending) return pending;
      // a hit without a layer needs no lease: read it without taking the write lock
      const plain = s.db.cacheRecords.getCache(k);
      if (!plain?.diffId) return plain;
      return s.db.transaction(() => {
        const hit = s.db.cacheRecords.getCache(k);
        if (hit?.diffId) lease.addLayers([hit.diffId]); // in one transaction with the lookup: prune sees it or we miss
        return hit;
      });
    },
    put: (r) => writes.put(r),
    touch: (k) => writes.touch(k),
  };
}
