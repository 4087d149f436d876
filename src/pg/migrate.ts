import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { runner } from 'node-pg-migrate';
import { BuildError } from '../errors/index.js';
import type { AppliedMigration, PgDatabase } from './types.js';

/** The table node-pg-migrate records applied migrations in. */
export const MIGRATIONS_TABLE = 'kiln_migrations';

/**
 * The folder of versioned SQL migrations (`db/pg-migrations` at the package root). Found by walking up from this
 * module, so it resolves from src/ (tsx), dist/pg/ and the one-file bundle dist/kiln.mjs alike.
 */
export function migrationsDir(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 5; i++) {
    const candidate = path.join(dir, 'db', 'pg-migrations');
    if (existsSync(candidate)) return candidate;
    dir = path.dirname(dir);
  }
  throw new BuildError('ERR_KILN_DB_MIGRATION', 'the PostgreSQL migrations folder db/pg-migrations is missing from this kiln installation');
}

/**
 * Bring the schema up to date. Pending migrations run in one transaction, under node-pg-migrate's advisory lock in
 * `wait` mode, so several API nodes and workers starting at once migrate exactly once and the others wait.
 * Returns the migrations this call applied (none when the schema was current).
 */
export async function migratePg(db: PgDatabase, opts: { signal?: AbortSignal } = {}): Promise<AppliedMigration[]> {
  opts.signal?.throwIfAborted();
  const client = await db.pool.connect();
  const silent = (): void => undefined;
  const messages: string[] = [];
  try {
    const ran = await runner({
      dbClient: client,
      dir: migrationsDir(),
      migrationsTable: MIGRATIONS_TABLE,
      direction: 'up',
      checkOrder: true,
      singleTransaction: true,
      advisoryLockMode: 'wait',
      logger: { debug: silent, info: silent, warn: (m) => messages.push(m), error: (m) => messages.push(m) },
    });
    return ran.map((m) => ({ name: m.name }));
  } catch (err) {
    const reason = (err as Error).message ?? String(err);
    throw new BuildError('ERR_KILN_DB_MIGRATION', `migrating ${db.displayUrl}: ${reason}${messages.length ? ` (${messages.join('; ')})` : ''}`, { cause: err });
  } finally {
    client.release();
  }
}

/** Names of the migrations applied to this database, in order. */
export async function appliedMigrations(db: PgDatabase): Promise<string[]> {
  const rows = await db.query<{ name: string }>(`SELECT name FROM ${MIGRATIONS_TABLE} ORDER BY run_on, id`).catch((err: { code?: string }) => {
    if (err.code === '42P01') return [];
    throw err;
  });
  return rows.map((r) => r.name);
}
