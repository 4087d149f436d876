import type { Pool, PoolClient, QueryResultRow } from 'pg';

/** Where the PostgreSQL database is: a `postgres://` URL, or the directory of a server's unix socket. */
export interface PgConnectOptions {
  /**
   * `postgres://USER[:PASSWORD]@HOST[:PORT]/DB` (also `postgresql://`; `?host=/socket/dir` for a unix socket), or an
   * absolute socket directory such as `/run/postgresql` (then `user`, `database` and `port` apply).
   */
  database: string;
  /** with a socket directory: the user and database name (default `postgres`) and the port naming the socket */
  user?: string;
  databaseName?: string;
  port?: number;
  /** pool size (default 10) */
  max?: number;
  /** name shown in pg_stat_activity */
  applicationName?: string;
  signal?: AbortSignal;
}

/** An open connection pool. `pool` is the `pg` pool itself, for libraries that take one (the queue). */
export interface PgDatabase {
  readonly pool: Pool;
  /** the address with any password removed, for messages */
  readonly displayUrl: string;
  /** the pg connection string (with credentials) for libraries that open their own pool */
  readonly connectionString: string;
  query<R extends QueryResultRow = QueryResultRow>(sql: string, params?: unknown[]): Promise<R[]>;
  /** run `fn` in one transaction on one client (BEGIN/COMMIT, ROLLBACK on a throw) */
  transaction<T>(fn: (client: PoolClient) => Promise<T>): Promise<T>;
  close(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}

/** One applied migration. */
export interface AppliedMigration {
  name: string;
}
