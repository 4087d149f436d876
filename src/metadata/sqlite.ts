import Database from 'better-sqlite3';
import path from 'node:path';
import { BuildError, isDiskFull } from '../errors/index.js';
import type { Digest } from '../oci/index.js';
import type { BuildRecord, CacheRecord, ImageRecord, LayerRecord, LeaseRecord } from './types.js';

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
interface Stmt {
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


/** Metadata in one SQLite file. Every write is a transaction; WAL keeps readers off writers' backs. */
export class MetadataDb {
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
  private stmt(sql: string): Stmt {
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

  tx<T>(fn: () => T): T {
    try {
      return this.db.transaction(fn).immediate();
    } catch (err) {
      throw translateSqliteError(err, this.file);
    }
  }

  // ---- images
  getImage(name: string): ImageRecord | undefined {
    const r = this.stmt('SELECT name, manifest, created FROM images WHERE name = ?').get(name) as
      | { name: string; manifest: Digest; created: number }
      | undefined;
    return r;
  }
  listImages(): ImageRecord[] {
    return this.stmt('SELECT name, manifest, created FROM images ORDER BY name').all() as ImageRecord[];
  }
  putImage(rec: ImageRecord): void {
    this.stmt('INSERT INTO images (name, manifest, created) VALUES (?, ?, ?) ON CONFLICT(name) DO UPDATE SET manifest = excluded.manifest, created = excluded.created')
      .run(rec.name, rec.manifest, rec.created);
  }
  deleteImage(name: string): boolean {
    return this.stmt('DELETE FROM images WHERE name = ?').run(name).changes > 0;
  }

  // ---- layers
  getLayer(diffId: string): LayerRecord | undefined {
    const r = this.stmt('SELECT * FROM layers WHERE diff_id = ?').get(diffId) as Record<string, unknown> | undefined;
    return r ? rowToLayer(r) : undefined;
  }
  getLayerByBlob(blob: string): LayerRecord | undefined {
    const r = this.stmt('SELECT * FROM layers WHERE blob = ?').get(blob) as Record<string, unknown> | undefined;
    return r ? rowToLayer(r) : undefined;
  }
  listLayers(): LayerRecord[] {
    return (this.stmt('SELECT * FROM layers').all() as Record<string, unknown>[]).map(rowToLayer);
  }
  putLayer(rec: Omit<LayerRecord, 'created' | 'lastUsed'>): void {
    const now = Date.now();
    this.stmt(`INSERT INTO layers (diff_id, blob, blob_size, media_type, content_id, snapshot_id, created, last_used)
      VALUES (?, ?, ?, ?, ?, ?, ?, ?)
      ON CONFLICT(diff_id) DO UPDATE SET blob = excluded.blob, blob_size = excluded.blob_size, media_type = excluded.media_type,
        content_id = excluded.content_id, snapshot_id = COALESCE(excluded.snapshot_id, layers.snapshot_id), last_used = excluded.last_used`)
      .run(rec.diffId, rec.blob, rec.blobSize, rec.mediaType, rec.contentId, rec.snapshotId, now, now);
  }
  setLayerSnapshot(diffId: string, snapshotId: number | null): void {
    this.stmt('UPDATE layers SET snapshot_id = ? WHERE diff_id = ?').run(snapshotId, diffId);
  }
  touchLayer(diffId: string): void {
    this.stmt('UPDATE layers SET last_used = ? WHERE diff_id = ?').run(Date.now(), diffId);
  }
  deleteLayer(diffId: string): void {
    this.stmt('DELETE FROM layers WHERE diff_id = ?').run(diffId);
  }

  // ---- snapshots
  createSnapshot(diffId: string | null): number {
    const r = this.stmt('INSERT INTO snapshots (diff_id, state, created) VALUES (?, ?, ?)').run(diffId, `preparing:${process.pid}`, Date.now());
    return Number(r.lastInsertRowid);
  }
  commitSnapshot(id: number, diffId: string): void {
    this.stmt('UPDATE snapshots SET state = ?, diff_id = ? WHERE id = ?').run('committed', diffId, id);
  }
  getSnapshot(id: number): { id: number; diffId: string | null; state: string } | undefined {
    return this.stmt('SELECT id, diff_id AS diffId, state FROM snapshots WHERE id = ?').get(id) as
      | { id: number; diffId: string | null; state: string }
      | undefined;
  }
  listSnapshots(): Array<{ id: number; diffId: string | null; state: string }> {
    return this.stmt('SELECT id, diff_id AS diffId, state FROM snapshots').all() as Array<{ id: number; diffId: string | null; state: string }>;
  }
  deleteSnapshot(id: number): void {
    this.stmt('DELETE FROM snapshots WHERE id = ?').run(id);
  }

  // ---- cache records
  getCache(key: string): CacheRecord | undefined {
    const r = this.stmt('SELECT * FROM cache WHERE key = ?').get(key) as Record<string, unknown> | undefined;
    return r ? rowToCache(r) : undefined;
  }
  /** Only the `created` time of a cache record (no JSON parse of its inputs). */
  getCacheCreated(key: string): number | undefined {
    return (this.stmt('SELECT created FROM cache WHERE key = ?').get(key) as { created: number } | undefined)?.created;
  }
  /**
   * `created` (default now) is when this output was first produced: kept while a re-run gives the same output and
   * layer, reset when it gives another. Imported records bring their own.
   */
  putCache(rec: Omit<CacheRecord, 'created' | 'lastUsed' | 'useCount'> & { created?: number }): void {
    const now = Date.now();
    this.stmt(`INSERT INTO cache (key, output_id, diff_id, name, inputs, created, last_used, use_count)
      VALUES (?, ?, ?, ?, ?, ?, ?, 1)
      ON CONFLICT(key) DO UPDATE SET output_id = excluded.output_id, diff_id = excluded.diff_id, name = excluded.name,
        inputs = excluded.inputs, last_used = excluded.last_used, use_count = cache.use_count + 1,
        created = CASE WHEN cache.output_id = excluded.output_id AND cache.diff_id IS excluded.diff_id THEN cache.created ELSE excluded.created END`)
      .run(rec.key, rec.outputId, rec.diffId, rec.name, JSON.stringify(rec.inputs), rec.created ?? now, now);
  }
  touchCache(key: string): void {
    this.stmt('UPDATE cache SET last_used = ?, use_count = use_count + 1 WHERE key = ?').run(Date.now(), key);
  }
  deleteCache(key: string): void {
    this.stmt('DELETE FROM cache WHERE key = ?').run(key);
  }
  listCache(): CacheRecord[] {
    // without the inputs column: a listing (GC, du) reads the other fields; a record's inputs are read when asked for
    const rows = this.stmt('SELECT key, output_id, diff_id, name, created, last_used, use_count FROM cache ORDER BY last_used').all() as Record<string, unknown>[];
    const inputsOf = (key: string): string => (this.stmt('SELECT inputs FROM cache WHERE key = ?').get(key) as { inputs?: string } | undefined)?.inputs ?? '{}';
    return rows.map((r) => rowToCache(r, () => inputsOf(r.key as string)));
  }

  // ---- builds
  putBuild(b: BuildRecord): void {
    this.stmt(`INSERT INTO builds (id, started, finished, status, target, context, dockerfile, args, tags, image_digest, steps, error, owner)
      VALUES (@id, @started, @finished, @status, @target, @context, @dockerfile, @args, @tags, @imageDigest, @steps, @error, @owner)
      ON CONFLICT(id) DO UPDATE SET finished = excluded.finished, status = excluded.status, image_digest = excluded.image_digest,
        steps = excluded.steps, error = excluded.error`)
      .run({ ...b, owner: b.owner ?? null, args: JSON.stringify(b.args), tags: JSON.stringify(b.tags), steps: JSON.stringify(b.steps) });
  }
  /** Builds still marked running, with the process that owns each. */
  listRunningBuilds(): Array<{ id: string; owner: string | null }> {
    return this.stmt("SELECT id, owner FROM builds WHERE status = 'running'").all() as Array<{ id: string; owner: string | null }>;
  }
  /** Set a build's final status without rewriting its steps (a small write, for a full disk or a dead process). */
  finishBuildRecord(b: { id: string; status: BuildRecord['status']; finished: number; error: string | null }): void {
    this.stmt('UPDATE builds SET status = ?, finished = ?, error = ? WHERE id = ?').run(b.status, b.finished, b.error, b.id);
  }
  listBuilds(): BuildRecord[] {
    return (this.stmt('SELECT * FROM builds ORDER BY started DESC').all() as Record<string, unknown>[]).map(rowToBuild);
  }
  getBuild(id: string): BuildRecord | undefined {
    const r = this.stmt('SELECT * FROM builds WHERE id = ? OR id LIKE ? ORDER BY started DESC').get(id, `${id}%`) as Record<string, unknown> | undefined;
    return r ? rowToBuild(r) : undefined;
  }
  deleteBuild(id: string): void {
    this.stmt('DELETE FROM builds WHERE id = ?').run(id);
  }

  // ---- stat cache
  statCacheLoad(): Map<string, string> {
    const m = new Map<string, string>();
    for (const r of this.stmt('SELECT k, digest FROM stat_cache').iterate() as Iterable<{ k: string; digest: string }>) m.set(r.k, r.digest);
    return m;
  }
  statCacheSave(entries: Iterable<[string, string]>): void {
    const ins = this.stmt('INSERT OR REPLACE INTO stat_cache (k, digest) VALUES (?, ?)');
    this.tx(() => {
      for (const [k, d] of entries) ins.run(k, d);
    });
  }

  // ---- leases (src/gc): what running builds use, so prune and GC leave it alone
  putLease(l: LeaseRecord): void {
    this.stmt('INSERT OR REPLACE INTO leases (id, pid, created) VALUES (?, ?, ?)').run(l.id, l.pid, l.created);
  }
  addLeaseRefs(leaseId: string, kind: string, refs: Iterable<string>): void {
    const ins = this.stmt('INSERT OR IGNORE INTO lease_refs (lease_id, kind, ref) VALUES (?, ?, ?)');
    for (const r of refs) ins.run(leaseId, kind, r);
  }
  deleteLease(id: string): void {
    this.stmt('DELETE FROM lease_refs WHERE lease_id = ?').run(id);
    this.stmt('DELETE FROM leases WHERE id = ?').run(id);
  }
  listLeases(): LeaseRecord[] {
    return this.stmt('SELECT id, pid, created FROM leases').all() as LeaseRecord[];
  }
  listLeaseRefs(leaseIds: string[]): Array<{ leaseId: string; kind: string; ref: string }> {
    if (leaseIds.length === 0) return [];
    return this.stmt(`SELECT lease_id AS leaseId, kind, ref FROM lease_refs WHERE lease_id IN (${leaseIds.map(() => '?').join(',')})`)
      .all(...leaseIds) as Array<{ leaseId: string; kind: string; ref: string }>;
  }

  // ---- gc helpers: snapshot rows with their age, cached sizes of committed (immutable) snapshots
  listSnapshotRows(): Array<{ id: number; diffId: string | null; state: string; created: number }> {
    return this.stmt('SELECT id, diff_id AS diffId, state, created FROM snapshots').all() as Array<{ id: number; diffId: string | null; state: string; created: number }>;
  }
  snapshotSizes(): Map<number, number> {
    const m = new Map<number, number>();
    for (const r of this.stmt('SELECT id, bytes FROM snapshot_sizes').all() as Array<{ id: number; bytes: number }>) m.set(r.id, r.bytes);
    return m;
  }
  putSnapshotSize(id: number, bytes: number): void {
    this.stmt('INSERT OR REPLACE INTO snapshot_sizes (id, bytes) VALUES (?, ?)').run(id, bytes);
  }
  deleteSnapshotSize(id: number): void {
    this.stmt('DELETE FROM snapshot_sizes WHERE id = ?').run(id);
  }
  /** Cache records whose layer is `diffId`. */
  countCacheByDiffId(diffId: string): number {
    return (this.stmt('SELECT COUNT(*) AS n FROM cache WHERE diff_id = ?').get(diffId) as { n: number }).n;
  }
}

function rowToLayer(r: Record<string, unknown>): LayerRecord {
  return {
    diffId: r.diff_id as Digest,
    blob: r.blob as Digest,
    blobSize: r.blob_size as number,
    mediaType: r.media_type as string,
    contentId: r.content_id as string,
    snapshotId: (r.snapshot_id as number | null) ?? null,
    created: r.created as number,
    lastUsed: r.last_used as number,
  };
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

function rowToBuild(r: Record<string, unknown>): BuildRecord {
  return {
    id: r.id as string,
    started: r.started as number,
    finished: (r.finished as number | null) ?? null,
    status: r.status as BuildRecord['status'],
    target: r.target as string,
    context: r.context as string,
    dockerfile: r.dockerfile as string,
    args: JSON.parse(r.args as string) as Record<string, string>,
    tags: JSON.parse(r.tags as string) as string[],
    imageDigest: (r.image_digest as string | null) ?? null,
    steps: JSON.parse(r.steps as string) as Array<Record<string, unknown>>,
    error: (r.error as string | null) ?? null,
    owner: (r.owner as string | null | undefined) ?? null,
  };
}

export function openMetadataDb(file: string): MetadataDb {
  return new MetadataDb(file);
}
