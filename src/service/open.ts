import path from 'node:path';
import { migratePg, openPg } from '../pg/index.js';
import { SqliteServiceStore } from './db.js';
import { PgServiceStore } from './pg-store.js';
import type { ServiceStore } from './types.js';

export interface ServiceStoreOptions {
  /** the state root: without `database`, the store is ROOT/service.db */
  root: string;
  /** `postgres://...` (or a socket directory): the store is that PostgreSQL database, migrated on open */
  database?: string;
  /** with `database`: pool size (default 10) and the name shown in pg_stat_activity */
  poolSize?: number;
  applicationName?: string;
}

/** Open the service's store: PostgreSQL when a database is configured, else the SQLite file in the root. */
export async function openServiceStore(o: ServiceStoreOptions): Promise<ServiceStore> {
  if (!o.database) return new SqliteServiceStore(path.join(o.root, 'service.db'));
  const db = await openPg({ database: o.database, max: o.poolSize ?? 10, applicationName: o.applicationName ?? 'kiln serve' });
  try {
    await migratePg(db);
  } catch (err) {
    await db.close();
    throw err;
  }
  return new PgServiceStore(db);
}
