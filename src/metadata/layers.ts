import type { Digest } from '../oci/index.js';

export interface LayerRecord {
  diffId: Digest;
  /** compressed blob in the content store */
  blob: Digest;
  blobSize: number;
  mediaType: string;
  /** digest of the layer's content without timestamps (early cutoff compares this) */
  contentId: string;
  /** unpacked snapshot directory id, if unpacked */
  snapshotId: number | null;
  created: number;
  lastUsed: number;
}

/** A snapshot row: `preparing:<pid>` while written, `committed` once its directory is complete. */
export interface SnapshotRow {
  id: number;
  diffId: string | null;
  state: string;
}

/** Layers: a diffID, its compressed blob and the snapshot it is unpacked in (`layers` table). */
export interface LayerRecords {
  getLayer(diffId: string): LayerRecord | undefined;
  getLayerByBlob(blob: string): LayerRecord | undefined;
  listLayers(): LayerRecord[];
  /** insert or update; a null snapshotId keeps the one recorded */
  putLayer(rec: Omit<LayerRecord, 'created' | 'lastUsed'>): void;
  setLayerSnapshot(diffId: string, snapshotId: number | null): void;
  touchLayer(diffId: string): void;
  deleteLayer(diffId: string): void;
}

/** Snapshot directories and their measured sizes (`snapshots`, `snapshot_sizes` tables); the snapshotter's index. */
export interface SnapshotRecords {
  /** a new row in state `preparing:<this pid>`; returns its id */
  createSnapshot(diffId: string | null): number;
  commitSnapshot(id: number, diffId: string): void;
  getSnapshot(id: number): SnapshotRow | undefined;
  listSnapshots(): SnapshotRow[];
  deleteSnapshot(id: number): void;
  /** snapshot rows with their age (GC) */
  listSnapshotRows(): Array<SnapshotRow & { created: number }>;
  /** cached sizes of committed (immutable) snapshots */
  snapshotSizes(): Map<number, number>;
  putSnapshotSize(id: number, bytes: number): void;
  deleteSnapshotSize(id: number): void;
}

/** The layers role: layer records and the snapshots they are unpacked in (how a layer, its blob and its snapshot relate). */
export interface LayerRepo extends LayerRecords, SnapshotRecords {}
