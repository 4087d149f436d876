import Database from 'better-sqlite3';
import path from 'node:path';
import { BuildError, isDiskFull } from '../../errors/index.js';

const SCHEMA_VERSION = 1;

const SCHEMA = `
CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS images (
  name TEXT PRIMARY KEY, manifest TEXT NOT NULL, created INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS layers (
  diff_id TEXT PRIMARY KEY, blob TEXT NOT NULL, blob_size INTEGER NOT NULL, media_type TEXT NOT NULL,
  content_id TEXT NOT NULL, snapshot_id INTEGER, created INTEGER NOT NULL, last_used INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS layers_blob ON layers(blob);
CREATE TABLE IF NOT EXISTS snapshots (
  id INTEGER PRIMARY KEY AUTOINCREMENT, diff_id TEXT, state TEXT NOT NULL, created INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS cache (
  key TEXT PRIMARY KEY, output_id TEXT NOT NULL, diff_id TEXT, name TEXT NOT NULL, inputs TEXT NOT NULL,
  created INTEGER NOT NULL, last_used INTEGER NOT NULL, use_count INTEGER NOT NULL DEFAULT 1);
CREATE TABLE IF NOT EXISTS builds (
  id TEXT PRIMARY KEY, started INTEGER NOT NULL, finished INTEGER, status TEXT NOT NULL, target TEXT NOT NULL,
  context TEXT NOT NULL, dockerfile TEXT NOT NULL, args TEXT NOT NULL, tags TEXT NOT NULL, image_digest TEXT,
  steps TEXT NOT NULL, error TEXT);
CREATE TABLE IF NOT EXISTS stat_cache (k TEXT PRIMARY KEY, digest TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS leases (id TEXT PRIMARY KEY, pid INTEGER NOT NULL, created INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS lease_refs (
  lease_id TEXT NOT NULL, kind TEXT NOT NULL, ref TEXT NOT NULL, PRIMARY KEY (lease_id, kind, ref));
CREATE TABLE IF NOT EXISTS snapshot_sizes (id INTEGER PRIMARY KEY, bytes INTEGER NOT NULL);
`;

/** A prepared statement whose SQLite errors come out as coded BuildErrors. */
export interface Stmt {
  run(...params: unknown[]): Database.RunResult;
  get(...params: unknown[]): unknown;
  all(...params: unknown[]): unknown[];
  iterate(...params: unknown[]): IterableIterator<unknown>;
}

/**
 * SQLite's result codes as a user reads them: a full disk is "no space left on device while writing the metadata
 * database under <dir>", a lock held elsewhere is "busy", an I/O error is an I/O error (or no space, when the
 * filesystem has no free blocks: SQLite reports a failed WAL or shm growth as SQLITE_IOERR). Anything that is not a
 * SQLite error is passed through unchanged.
 */
export function translateSqliteError(err: unknown, file: string): unknown {
  const code = (err as { code?: unknown })?.code;
  if (typeof code !== 'string' || !code.startsWith('SQLITE_')) return err;
  const dir = path.dirname(file);
  const msg = (err as Error).message;
  const noSpace = (): BuildError =>
    new BuildError('ERR_KILN_NO_SPACE', `no space left on device while writing the metadata database under ${dir}`, { cause: err, details: { file, sqlite: code } });
  if (code === 'SQLITE_FULL') return noSpace();
  if (code === 'SQLITE_BUSY' || code.startsWith('SQLITE_BUSY_') || code === 'SQLITE_LOCKED') {
    return new BuildError('ERR_KILN_DB_BUSY', `the metadata database ${file} is busy (${msg})`, { cause: err, details: { file, sqlite: code } });
  }
  if (code.startsWith('SQLITE_IOERR') || code === 'SQLITE_CANTOPEN' || code.startsWith('SQLITE_CANTOPEN_') || code.startsWith('SQLITE_READONLY')) {
    if (isDiskFull(dir, 64 * 1024)) return noSpace();
    return new BuildError('ERR_KILN_DB_IO', `${msg} on the metadata database ${file} (${code})`, { cause: err, details: { file, sqlite: code } });
  }
  if (code.startsWith('SQLITE_CORRUPT') || code === 'SQLITE_NOTADB') {
    return new BuildError('ERR_KILN_DB_IO', `the metadata database ${file} is damaged: ${msg} (${code})`, { cause: err, details: { file, sqlite: code } });
  }
  return err;
}


/**
 * One SQLite file, shared by every role's repository: the schema, prepared statements and transactions. Every write
 * is a transaction; WAL keeps readers off writers' backs.
 */
export class SqliteConnection {
  readonly db: Database.Database;
  private readonly file: string;
  private readonly stmts = new Map<string, Stmt>();

  constructor(file: string) {
    this.file = file;
    try {
      this.db = new Database(file, { timeout: 30_000 });
      this.db.pragma('journal_mode = WAL');
      this.db.pragma('synchronous = NORMAL');
      this.db.pragma('foreign_keys = ON');
      this.db.exec(SCHEMA);
      const cols = this.db.prepare('PRAGMA table_info(builds)').all() as Array<{ name: string }>;
      if (!cols.some((c) => c.name === 'owner')) this.db.exec('ALTER TABLE builds ADD COLUMN owner TEXT');
    } catch (err) {
      throw translateSqliteError(err, file);
    }
    const row = this.stmt('SELECT v FROM meta WHERE k = ?').get('schema') as { v: string } | undefined;
    if (!row) this.stmt('INSERT INTO meta (k, v) VALUES (?, ?)').run('schema', String(SCHEMA_VERSION));
  }
  /**
   * A statement prepared once per database (preparing per call cost more than the query itself: a build of 55,000
   * steps spent most of its time in `prepare`), with SQLite errors translated ({@link translateSqliteError}).
   */
  stmt(sql: string): Stmt {
    let st = this.stmts.get(sql);
    if (st) return st;
    const file = this.file;
    let prepared: Database.Statement;
    try {
      prepared = this.db.prepare(sql);
    } catch (err) {
      throw translateSqliteError(err, file);
    }
    const wrap = <A extends unknown[], R>(fn: (...a: A) => R) => (...a: A): R => {
      try {
        return fn(...a);
      } catch (err) {
        throw translateSqliteError(err, file);
      }
    };
    st = {
      run: wrap((...p: unknown[]) => prepared.run(...p)),
      get: wrap((...p: unknown[]) => prepared.get(...p)),
      all: wrap((...p: unknown[]) => prepared.all(...p)),
      iterate: wrap((...p: unknown[]) => {
        const it = prepared.iterate(...p) as IterableIterator<unknown>;
        const next = wrap(() => it.next());
        const out: IterableIterator<unknown> = { next, [Symbol.iterator]: () => out, return: (v?: unknown) => it.return?.(v) ?? { done: true, value: v } };
        return out;
      }),
    };
    // statements with a variable argument list (IN (?, ?, ...)) are not worth keeping
    if (!sql.includes(' IN (')) this.stmts.set(sql, st);
    return st;
  }

  close(): void {
    this.stmts.clear();
    this.db.close();
  }

  transaction<T>(fn: () => T): T {
    try {
      return this.db.transaction(fn).immediate();
    } catch (err) {
      throw translateSqliteError(err, this.file);
    }
  }
}
