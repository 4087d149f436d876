import type { StatCacheRepo } from '../stat-cache.js';
import type { SqliteConnection } from './connection.js';

/** The StatCacheRepo role over the shared SQLite connection. */
export class SqliteStatCache implements StatCacheRepo {
  constructor(private readonly c: SqliteConnection) {}

  statCacheLoad(): Map<string, string> {
    const m = new Map<string, string>();
    for (const r of this.c.stmt('SELECT k, digest FROM stat_cache').iterate() as Iterable<{ k: string; digest: string }>) m.set(r.k, r.digest);
    return m;
  }
  statCacheSave(entries: Iterable<[string, string]>): void {
    const ins = this.c.stmt('INSERT OR REPLACE INTO stat_cache (k, digest) VALUES (?, ?)');
    this.c.transaction(() => {
      for (const [k, d] of entries) ins.run(k, d);
    });
  }
}
