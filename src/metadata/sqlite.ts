import Database from 'better-sqlite3';
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

/** Metadata in one SQLite file. Every write is a transaction; WAL keeps readers off writers' backs. */
export class MetadataDb {
  readonly db: Database.Database;

  constructor(file: string) {
    this.db = new Database(file, { timeout: 30_000 });
    this.db.pragma('journal_mode = WAL');
    this.db.pragma('synchronous = NORMAL');
    this.db.pragma('foreign_keys = ON');
    this.db.exec(SCHEMA);
    const row = this.db.prepare('SELECT v FROM meta WHERE k = ?').get('schema') as { v: string } | undefined;
    if (!row) this.db.prepare('INSERT INTO meta (k, v) VALUES (?, ?)').run('schema', String(SCHEMA_VERSION));
  }

  close(): void {
    this.db.close();
  }

  tx<T>(fn: () => T): T {
    return this.db.transaction(fn).immediate();
  }

  // ---- images
  getImage(name: string): ImageRecord | undefined {
    const r = this.db.prepare('SELECT name, manifest, created FROM images WHERE name = ?').get(name) as
      | { name: string; manifest: Digest; created: number }
      | undefined;
    return r;
  }
  listImages(): ImageRecord[] {
    return this.db.prepare('SELECT name, manifest, created FROM images ORDER BY name').all() as ImageRecord[];
  }
  putImage(rec: ImageRecord): void {
    this.db.prepare('INSERT INTO images (name, manifest, created) VALUES (?, ?, ?) ON CONFLICT(name) DO UPDATE SET manifest = excluded.manifest, created = excluded.created')
      .run(rec.name, rec.manifest, rec.created);
  }
  deleteImage(name: string): boolean {
    return this.db.prepare('DELETE FROM images WHERE name = ?').run(name).changes > 0;
  }

  // ---- layers
  getLayer(diffId: string): LayerRecord | undefined {
    const r = this.db.prepare('SELECT * FROM layers WHERE diff_id = ?').get(diffId) as Record<string, unknown> | undefined;
    return r ? rowToLayer(r) : undefined;
  }
  getLayerByBlob(blob: string): LayerRecord | undefined {
    const r = this.db.prepare('SELECT * FROM layers WHERE blob = ?').get(blob) as Record<string, unknown> | undefined;
    return r ? rowToLayer(r) : undefined;
  }
  listLayers(): LayerRecord[] {
    return (this.db.prepare('SELECT * FROM layers').all() as Record<string, unknown>[]).map(rowToLayer);
  }
  putLayer(rec: Omit<LayerRecord, 'created' | 'lastUsed'>): void {
    const now = Date.now();
    this.db.prepare(`INSERT INTO layers (diff_id, blob, blob_size, media_type, content_id, snapshot_id, created, last_used)
      VALUES (?, ?, ?, ?, ?, ?, ?, ?)
      ON CONFLICT(diff_id) DO UPDATE SET blob = excluded.blob, blob_size = excluded.blob_size, media_type = excluded.media_type,
        content_id = excluded.content_id, snapshot_id = COALESCE(excluded.snapshot_id, layers.snapshot_id), last_used = excluded.last_used`)
      .run(rec.diffId, rec.blob, rec.blobSize, rec.mediaType, rec.contentId, rec.snapshotId, now, now);
  }
  setLayerSnapshot(diffId: string, snapshotId: number | null): void {
    this.db.prepare('UPDATE layers SET snapshot_id = ? WHERE diff_id = ?').run(snapshotId, diffId);
  }
  touchLayer(diffId: string): void {
    this.db.prepare('UPDATE layers SET last_used = ? WHERE diff_id = ?').run(Date.now(), diffId);
  }
  deleteLayer(diffId: string): void {
    this.db.prepare('DELETE FROM layers WHERE diff_id = ?').run(diffId);
  }

  // ---- snapshots
  createSnapshot(diffId: string | null): number {
    const r = this.db.prepare('INSERT INTO snapshots (diff_id, state, created) VALUES (?, ?, ?)').run(diffId, `preparing:${process.pid}`, Date.now());
    return Number(r.lastInsertRowid);
  }
  commitSnapshot(id: number, diffId: string): void {
    this.db.prepare('UPDATE snapshots SET state = ?, diff_id = ? WHERE id = ?').run('committed', diffId, id);
  }
  getSnapshot(id: number): { id: number; diffId: string | null; state: string } | undefined {
    return this.db.prepare('SELECT id, diff_id AS diffId, state FROM snapshots WHERE id = ?').get(id) as
      | { id: number; diffId: string | null; state: string }
      | undefined;
  }
  listSnapshots(): Array<{ id: number; diffId: string | null; state: string }> {
    return this.db.prepare('SELECT id, diff_id AS diffId, state FROM snapshots').all() as Array<{ id: number; diffId: string | null; state: string }>;
  }
  deleteSnapshot(id: number): void {
    this.db.prepare('DELETE FROM snapshots WHERE id = ?').run(id);
  }

  // ---- cache records
  getCache(key: string): CacheRecord | undefined {
    const r = this.db.prepare('SELECT * FROM cache WHERE key = ?').get(key) as Record<string, unknown> | undefined;
    return r ? rowToCache(r) : undefined;
  }
  /**
   * `created` (default now) is when this output was first produced: kept while a re-run gives the same output and
   * layer, reset when it gives another. Imported records bring their own.
   */
  putCache(rec: Omit<CacheRecord, 'created' | 'lastUsed' | 'useCount'> & { created?: number }): void {
    const now = Date.now();
    this.db.prepare(`INSERT INTO cache (key, output_id, diff_id, name, inputs, created, last_used, use_count)
      VALUES (?, ?, ?, ?, ?, ?, ?, 1)
      ON CONFLICT(key) DO UPDATE SET output_id = excluded.output_id, diff_id = excluded.diff_id, name = excluded.name,
        inputs = excluded.inputs, last_used = excluded.last_used, use_count = cache.use_count + 1,
        created = CASE WHEN cache.output_id = excluded.output_id AND cache.diff_id IS excluded.diff_id THEN cache.created ELSE excluded.created END`)
      .run(rec.key, rec.outputId, rec.diffId, rec.name, JSON.stringify(rec.inputs), rec.created ?? now, now);
  }
  touchCache(key: string): void {
    this.db.prepare('UPDATE cache SET last_used = ?, use_count = use_count + 1 WHERE key = ?').run(Date.now(), key);
  }
  deleteCache(key: string): void {
    this.db.prepare('DELETE FROM cache WHERE key = ?').run(key);
  }
  listCache(): CacheRecord[] {
    return (this.db.prepare('SELECT * FROM cache ORDER BY last_used').all() as Record<string, unknown>[]).map(rowToCache);
  }

  // ---- builds
  putBuild(b: BuildRecord): void {
    this.db.prepare(`INSERT INTO builds (id, started, finished, status, target, context, dockerfile, args, tags, image_digest, steps, error)
      VALUES (@id, @started, @finished, @status, @target, @context, @dockerfile, @args, @tags, @imageDigest, @steps, @error)
      ON CONFLICT(id) DO UPDATE SET finished = excluded.finished, status = excluded.status, image_digest = excluded.image_digest,
        steps = excluded.steps, error = excluded.error`)
      .run({ ...b, args: JSON.stringify(b.args), tags: JSON.stringify(b.tags), steps: JSON.stringify(b.steps) });
  }
  listBuilds(): BuildRecord[] {
    return (this.db.prepare('SELECT * FROM builds ORDER BY started DESC').all() as Record<string, unknown>[]).map(rowToBuild);
  }
  getBuild(id: string): BuildRecord | undefined {
    const r = this.db.prepare('SELECT * FROM builds WHERE id = ? OR id LIKE ? ORDER BY started DESC').get(id, `${id}%`) as Record<string, unknown> | undefined;
    return r ? rowToBuild(r) : undefined;
  }
  deleteBuild(id: string): void {
    this.db.prepare('DELETE FROM builds WHERE id = ?').run(id);
  }

  // ---- stat cache
  statCacheLoad(): Map<string, string> {
    const m = new Map<string, string>();
    for (const r of this.db.prepare('SELECT k, digest FROM stat_cache').iterate() as Iterable<{ k: string; digest: string }>) m.set(r.k, r.digest);
    return m;
  }
  statCacheSave(entries: Iterable<[string, string]>): void {
    const ins = this.db.prepare('INSERT OR REPLACE INTO stat_cache (k, digest) VALUES (?, ?)');
    this.tx(() => {
      for (const [k, d] of entries) ins.run(k, d);
    });
  }

  // ---- leases (src/gc): what running builds use, so prune and GC leave it alone
  putLease(l: LeaseRecord): void {
    this.db.prepare('INSERT OR REPLACE INTO leases (id, pid, created) VALUES (?, ?, ?)').run(l.id, l.pid, l.created);
  }
  addLeaseRefs(leaseId: string, kind: string, refs: Iterable<string>): void {
    const ins = this.db.prepare('INSERT OR IGNORE INTO lease_refs (lease_id, kind, ref) VALUES (?, ?, ?)');
    for (const r of refs) ins.run(leaseId, kind, r);
  }
  deleteLease(id: string): void {
    this.db.prepare('DELETE FROM lease_refs WHERE lease_id = ?').run(id);
    this.db.prepare('DELETE FROM leases WHERE id = ?').run(id);
  }
  listLeases(): LeaseRecord[] {
    return this.db.prepare('SELECT id, pid, created FROM leases').all() as LeaseRecord[];
  }
  listLeaseRefs(leaseIds: string[]): Array<{ leaseId: string; kind: string; ref: string }> {
    if (leaseIds.length === 0) return [];
    return this.db.prepare(`SELECT lease_id AS leaseId, kind, ref FROM lease_refs WHERE lease_id IN (${leaseIds.map(() => '?').join(',')})`)
      .all(...leaseIds) as Array<{ leaseId: string; kind: string; ref: string }>;
  }

  // ---- gc helpers: snapshot rows with their age, cached sizes of committed (immutable) snapshots
  listSnapshotRows(): Array<{ id: number; diffId: string | null; state: string; created: number }> {
    return this.db.prepare('SELECT id, diff_id AS diffId, state, created FROM snapshots').all() as Array<{ id: number; diffId: string | null; state: string; created: number }>;
  }
  snapshotSizes(): Map<number, number> {
    const m = new Map<number, number>();
    for (const r of this.db.prepare('SELECT id, bytes FROM snapshot_sizes').all() as Array<{ id: number; bytes: number }>) m.set(r.id, r.bytes);
    return m;
  }
  putSnapshotSize(id: number, bytes: number): void {
    this.db.prepare('INSERT OR REPLACE INTO snapshot_sizes (id, bytes) VALUES (?, ?)').run(id, bytes);
  }
  deleteSnapshotSize(id: number): void {
    this.db.prepare('DELETE FROM snapshot_sizes WHERE id = ?').run(id);
  }
  /** Cache records whose layer is `diffId`. */
  countCacheByDiffId(diffId: string): number {
    return (this.db.prepare('SELECT COUNT(*) AS n FROM cache WHERE diff_id = ?').get(diffId) as { n: number }).n;
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

function rowToCache(r: Record<string, unknown>): CacheRecord {
  return {
    key: r.key as string,
    outputId: r.output_id as string,
    diffId: (r.diff_id as Digest | null) ?? null,
    name: r.name as string,
    inputs: JSON.parse(r.inputs as string) as Record<string, unknown>,
    created: r.created as number,
    lastUsed: r.last_used as number,
    useCount: r.use_count as number,
  };
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
  };
}

export function openMetadataDb(file: string): MetadataDb {
  return new MetadataDb(file);
}
