import type { Digest } from '../../oci/index.js';
import type { CacheRecord, CacheRecordRepo } from '../cache-records.js';
import type { SqliteConnection } from './connection.js';

/** The CacheRecordRepo role over the shared SQLite connection. */
export class SqliteCacheRecords implements CacheRecordRepo {
  constructor(private readonly c: SqliteConnection) {}

  getCache(key: string): CacheRecord | undefined {
    const r = this.c.stmt('SELECT * FROM cache WHERE key = ?').get(key) as Record<string, unknown> | undefined;
    return r ? rowToCache(r) : undefined;
  }
  /** Only the `created` time of a cache record (no JSON parse of its inputs). */
  getCacheCreated(key: string): number | undefined {
    return (this.c.stmt('SELECT created FROM cache WHERE key = ?').get(key) as { created: number } | undefined)?.created;
  }
  /**
   * `created` (default now) is when this output was first produced: kept while a re-run gives the same output and
   * layer, reset when it gives another. Imported records bring their own.
   */
  putCache(rec: Omit<CacheRecord, 'created' | 'lastUsed' | 'useCount'> & { created?: number }): void {
    const now = Date.now();
    this.c.stmt(`INSERT INTO cache (key, output_id, diff_id, name, inputs, created, last_used, use_count)
      VALUES (?, ?, ?, ?, ?, ?, ?, 1)
      ON CONFLICT(key) DO UPDATE SET output_id = excluded.output_id, diff_id = excluded.diff_id, name = excluded.name,
        inputs = excluded.inputs, last_used = excluded.last_used, use_count = cache.use_count + 1,
        created = CASE WHEN cache.output_id = excluded.output_id AND cache.diff_id IS excluded.diff_id THEN cache.created ELSE excluded.created END`)
      .run(rec.key, rec.outputId, rec.diffId, rec.name, JSON.stringify(rec.inputs), rec.created ?? now, now);
  }
  touchCache(key: string): void {
    this.c.stmt('UPDATE cache SET last_used = ?, use_count = use_count + 1 WHERE key = ?').run(Date.now(), key);
  }
  deleteCache(key: string): void {
    this.c.stmt('DELETE FROM cache WHERE key = ?').run(key);
  }
  listCache(): CacheRecord[] {
    // without the inputs column: a listing (GC, du) reads the other fields; a record's inputs are read when asked for
    const rows = this.c.stmt('SELECT key, output_id, diff_id, name, created, last_used, use_count FROM cache ORDER BY last_used').all() as Record<string, unknown>[];
    const inputsOf = (key: string): string => (this.c.stmt('SELECT inputs FROM cache WHERE key = ?').get(key) as { inputs?: string } | undefined)?.inputs ?? '{}';
    return rows.map((r) => rowToCache(r, () => inputsOf(r.key as string)));
  }

  /** Cache records whose layer is `diffId`. */
  countCacheByDiffId(diffId: string): number {
    return (this.c.stmt('SELECT COUNT(*) AS n FROM cache WHERE diff_id = ?').get(diffId) as { n: number }).n;
  }
}

function rowToCache(r: Record<string, unknown>, readInputs?: () => string): CacheRecord {
  const rec = {
    key: r.key as string,
    outputId: r.output_id as string,
    diffId: (r.diff_id as Digest | null) ?? null,
    name: r.name as string,
    created: r.created as number,
    lastUsed: r.last_used as number,
    useCount: r.use_count as number,
  } as CacheRecord;
  // the inputs JSON is parsed when first read: listing every record (GC, du) reads only the other fields
  let parsed: Record<string, unknown> | undefined;
  Object.defineProperty(rec, 'inputs', {
    enumerable: true,
    configurable: true,
    get: () => (parsed ??= JSON.parse(readInputs ? readInputs() : (r.inputs as string)) as Record<string, unknown>),
    set: (v: Record<string, unknown>) => {
      parsed = v;
    },
  });
  return rec;
}
