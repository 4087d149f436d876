export type { PgConnectOptions, PgDatabase, AppliedMigration } from './types.js';
export { openPg, pgConnectionString, redactPgUrl, pgError } from './connect.js';
export { migratePg, appliedMigrations, migrationsDir, MIGRATIONS_TABLE } from './migrate.js';
export { listenPg } from './listen.js';
export type { PgListener, ListenPgOptions } from './listen.js';
