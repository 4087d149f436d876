import type { Metadata } from '../metadata.js';
import { SqliteBuilds } from './builds.js';
import { SqliteCacheRecords } from './cache-records.js';
import { SqliteConnection } from './connection.js';
import { SqliteImages } from './images.js';
import { SqliteLayers } from './layers.js';
import { SqliteLeases } from './leases.js';
import { SqliteStatCache } from './stat-cache.js';

export { translateSqliteError } from './connection.js';

/** Every role over one SQLite file (one connection, one transaction helper; the schema of `connection.ts`). */
export function openSqliteMetadata(file: string): Metadata {
  const c = new SqliteConnection(file);
  return {
    images: new SqliteImages(c),
    layers: new SqliteLayers(c),
    cacheRecords: new SqliteCacheRecords(c),
    builds: new SqliteBuilds(c),
    statCache: new SqliteStatCache(c),
    leases: new SqliteLeases(c),
    transaction: (fn) => c.transaction(fn),
    close: () => c.close(),
  };
}
