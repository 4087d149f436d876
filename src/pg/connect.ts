import pg from 'pg';
import type { PoolClient, QueryResultRow } from 'pg';
import { parse } from 'pg-connection-string';
import { BuildError, isBuildError } from '../errors/index.js';
import type { PgConnectOptions, PgDatabase } from './types.js';

/** The address with the password replaced, safe to print. */
export function redactPgUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return url.replace(/\/\/([^:/@]+):[^@/]*@/, '//$1:***@');
  }
}

/**
 * Turn `--database` into a pg connection string, refusing anything that is not a postgres URL or an absolute socket
 * directory with a clear error (the value is echoed without its password).
 */
export function pgConnectionString(opts: Pick<PgConnectOptions, 'database' | 'user' | 'databaseName' | 'port'>): string {
  const raw = opts.database.trim();
  if (raw.startsWith('/')) {
    const q = new URLSearchParams({ host: raw });
    if (opts.port !== undefined) q.set('port', String(opts.port));
    return `postgres://${encodeURIComponent(opts.user ?? 'postgres')}@/${encodeURIComponent(opts.databaseName ?? 'postgres')}?${q.toString()}`;
  }
  const scheme = /^([a-z][a-z0-9+.-]*):\/\//i.exec(raw);
  if (!scheme) {
    throw new BuildError('ERR_KILN_DB_URL', `--database ${redactPgUrl(raw)}: not a URL or an absolute socket directory`);
  }
  if (scheme[1] !== 'postgres' && scheme[1] !== 'postgresql') {
    throw new BuildError('ERR_KILN_DB_URL', `--database ${redactPgUrl(raw)}: the scheme must be postgres:// or postgresql://, not ${scheme[1]}://`);
  }
  let parsed: ReturnType<typeof parse>;
  try {
    parsed = parse(raw);
  } catch (err) {
    throw new BuildError('ERR_KILN_DB_URL', `--database ${redactPgUrl(raw)}: ${(err as Error).message}`);
  }
  if (!parsed.host) {
    throw new BuildError('ERR_KILN_DB_URL', `--database ${redactPgUrl(raw)}: no host (give HOST[:PORT] or ?host=/socket/dir)`);
  }
  if (parsed.port && !(Number(parsed.port) > 0 && Number(parsed.port) < 65536)) {
    throw new BuildError('ERR_KILN_DB_URL', `--database ${redactPgUrl(raw)}: bad port ${parsed.port}`);
  }
  return raw;
}

/** Wrap a driver error as a user-facing one that names the (redacted) address; kiln's own errors pass through. */
export function pgError(err: unknown, displayUrl: string, what: string): BuildError {
  if (isBuildError(err)) return err;
  const e = err as { code?: string; message?: string };
  const reason = e.message ?? String(err);
  return new BuildError('ERR_KILN_DB_UNAVAILABLE', `${what} (${displayUrl}): ${reason}`, { cause: err, details: { pgCode: e.code } });
}

/**
 * Open a pool and check it with one round trip, so a wrong address fails here with a clear message rather than at
 * the first query.
 */
export async function openPg(opts: PgConnectOptions): Promise<PgDatabase> {
  const connectionString = pgConnectionString(opts);
  const displayUrl = redactPgUrl(connectionString);
  const pool = new pg.Pool({
    connectionString,
    max: opts.max ?? 10,
    application_name: opts.applicationName ?? 'kiln',
    connectionTimeoutMillis: 10_000,
  });
  // an idle client losing its connection (server restart) must not crash the process
  pool.on('error', () => undefined);
  try {
    await pool.query('SELECT 1');
  } catch (err) {
    await pool.end().catch(() => undefined);
    throw pgError(err, displayUrl, 'cannot connect to PostgreSQL');
  }
  let closed = false;
  const close = async (): Promise<void> => {
    if (closed) return;
    closed = true;
    await pool.end();
  };
  return {
    pool,
    displayUrl,
    connectionString,
    async query<R extends QueryResultRow = QueryResultRow>(sql: string, params?: unknown[]): Promise<R[]> {
      const r = await pool.query<R>(sql, params);
      return r.rows;
    },
    async transaction<T>(fn: (client: PoolClient) => Promise<T>): Promise<T> {
      const client = await pool.connect();
      try {
        await client.query('BEGIN');
        const out = await fn(client);
        await client.query('COMMIT');
        return out;
      } catch (err) {
        await client.query('ROLLBACK').catch(() => undefined);
        throw err;
      } finally {
        client.release();
      }
    },
    close,
    [Symbol.asyncDispose]: close,
  };
}
