import type { Digest } from '../../oci/index.js';
import type { LayerRecord, LayerRepo } from '../layers.js';
import type { SqliteConnection } from './connection.js';

/** The LayerRepo role over the shared SQLite connection. */
export class SqliteLayers implements LayerRepo {
  constructor(private readonly c: SqliteConnection) {}

  getLayer(diffId: string): LayerRecord | undefined {
    const r = this.c.stmt('SELECT * FROM layers WHERE diff_id = ?').get(diffId) as Record<string, unknown> | undefined;
    return r ? rowToLayer(r) : undefined;
  }
  getLayerByBlob(blob: string): LayerRecord | undefined {
    const r = this.c.stmt('SELECT * FROM layers WHERE blob = ?').get(blob) as Record<string, unknown> | undefined;
    return r ? rowToLayer(r) : undefined;
  }
  listLayers(): LayerRecord[] {
    return (this.c.stmt('SELECT * FROM layers').all() as Record<string, unknown>[]).map(rowToLayer);
  }
  putLayer(rec: Omit<LayerRecord, 'created' | 'lastUsed'>): void {
    const now = Date.now();
    this.c.stmt(`INSERT INTO layers (diff_id, blob, blob_size, media_type, content_id, snapshot_id, created, last_used)
      VALUES (?, ?, ?, ?, ?, ?, ?, ?)
      ON CONFLICT(diff_id) DO UPDATE SET blob = excluded.blob, blob_size = excluded.blob_size, media_type = excluded.media_type,
        content_id = excluded.content_id, snapshot_id = COALESCE(excluded.snapshot_id, layers.snapshot_id), last_used = excluded.last_used`)
      .run(rec.diffId, rec.blob, rec.blobSize, rec.mediaType, rec.contentId, rec.snapshotId, now, now);
  }
  setLayerSnapshot(diffId: string, snapshotId: number | null): void {
    this.c.stmt('UPDATE layers SET snapshot_id = ? WHERE diff_id = ?').run(snapshotId, diffId);
  }
  touchLayer(diffId: string): void {
    this.c.stmt('UPDATE layers SET last_used = ? WHERE diff_id = ?').run(Date.now(), diffId);
  }
  deleteLayer(diffId: string): void {
    this.c.stmt('DELETE FROM layers WHERE diff_id = ?').run(diffId);
  }


  // ---- snapshots
  createSnapshot(diffId: string | null): number {
    const r = this.c.stmt('INSERT INTO snapshots (diff_id, state, created) VALUES (?, ?, ?)').run(diffId, `preparing:${process.pid}`, Date.now());
    return Number(r.lastInsertRowid);
  }
  commitSnapshot(id: number, diffId: string): void {
    this.c.stmt('UPDATE snapshots SET state = ?, diff_id = ? WHERE id = ?').run('committed', diffId, id);
  }
  getSnapshot(id: number): { id: number; diffId: string | null; state: string } | undefined {
    return this.c.stmt('SELECT id, diff_id AS diffId, state FROM snapshots WHERE id = ?').get(id) as
      | { id: number; diffId: string | null; state: string }
      | undefined;
  }
  listSnapshots(): Array<{ id: number; diffId: string | null; state: string }> {
    return this.c.stmt('SELECT id, diff_id AS diffId, state FROM snapshots').all() as Array<{ id: number; diffId: string | null; state: string }>;
  }
  deleteSnapshot(id: number): void {
    this.c.stmt('DELETE FROM snapshots WHERE id = ?').run(id);
  }


  // snapshot rows with their age, cached sizes of committed (immutable) snapshots (GC)
  listSnapshotRows(): Array<{ id: number; diffId: string | null; state: string; created: number }> {
    return this.c.stmt('SELECT id, diff_id AS diffId, state, created FROM snapshots').all() as Array<{ id: number; diffId: string | null; state: string; created: number }>;
  }
  snapshotSizes(): Map<number, number> {
    const m = new Map<number, number>();
    for (const r of this.c.stmt('SELECT id, bytes FROM snapshot_sizes').all() as Array<{ id: number; bytes: number }>) m.set(r.id, r.bytes);
    return m;
  }
  putSnapshotSize(id: number, bytes: number): void {
    this.c.stmt('INSERT OR REPLACE INTO snapshot_sizes (id, bytes) VALUES (?, ?)').run(id, bytes);
  }
  deleteSnapshotSize(id: number): void {
    this.c.stmt('DELETE FROM snapshot_sizes WHERE id = ?').run(id);
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
