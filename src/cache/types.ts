import type { LayerRecord, LeaseRecord } from '../metadata/index.js';
import type { Descriptor, Digest } from '../oci/index.js';
import type { ActiveSnapshot, Snapshotter } from '../snapshot/index.js';
import type { ContentStore } from '../store/index.js';
import type { BuildLease } from './leases.js';

/**
 * The records the cache part reads and writes about layers and their snapshots: the narrow view of the metadata
 * database it needs (any implementation of these methods will do, not only SQLite's).
 */
export interface LayerRecords {
  getLayer(diffId: string): LayerRecord | undefined;
  putLayer(rec: Omit<LayerRecord, 'created' | 'lastUsed'>): void;
  setLayerSnapshot(diffId: string, snapshotId: number | null): void;
  touchLayer(diffId: string): void;
  getSnapshot(id: number): { state: string } | undefined;
  commitSnapshot(id: number, diffId: string): void;
  /** bytes on disk of a committed (immutable) snapshot, measured when it was written; GC reads it instead of walking */
  putSnapshotSize(id: number, bytes: number): void;
  /** run `fn` in one write transaction */
  tx<T>(fn: () => T): T;
}

/** The records leases live in (one row per lease, plus the layers and blobs it names). */
export interface LeaseRecords {
  putLease(l: LeaseRecord): void;
  addLeaseRefs(leaseId: string, kind: string, refs: Iterable<string>): void;
  deleteLease(id: string): void;
  listLeases(): LeaseRecord[];
  listLeaseRefs(leaseIds: string[]): Array<{ leaseId: string; kind: string; ref: string }>;
}

/** What a layer cache is made of. */
export interface LayerCacheDeps {
  records: LayerRecords;
  store: ContentStore;
  snapshots: Snapshotter;
  /** the build's lease: every layer acquired, committed or found usable is added to it, so GC leaves it alone */
  lease?: BuildLease;
}

/** A layer's committed snapshot, held until `release()`. */
export interface LayerRef {
  readonly diffId: Digest;
  readonly snapshotId: number;
  /** the snapshot's directory (an overlay lower dir) */
  readonly dir: string;
  /** the snapshot is still on disk and the ref is not released */
  usable(): boolean;
  /** Let go of the ref (its layer stays protected by the lease until the lease ends); safe to call twice. */
  release(): void;
}

/** A layer written from a directory: its digests, sizes and descriptor. */
export interface CommittedLayer {
  diffId: Digest;
  /** see docs/glossary.md: the identity later steps' output ids are chained from */
  contentId: string;
  /** bytes of the uncompressed tar */
  uncompressedSize: number;
  descriptor: Descriptor;
}

/** Options of {@link LayerCache.commit}. */
export interface CommitOptions {
  signal?: AbortSignal;
  /** clamp layer timestamps (SOURCE_DATE_EPOCH) */
  sourceDateEpoch?: number;
  /** cache the gzip members under this directory (context COPY steps, whose reruns mostly repeat the last result) */
  chunkCacheDir?: string;
}

/**
 * The one place that knows how a layer, its blob and its snapshot relate: layers by diffId (the `layers` record: blob,
 * size, media type, contentId, snapshot), unpacked once into committed snapshots, mounted as overlay lowers, and
 * written from an upper directory into a blob, a record and a snapshot.
 */
export interface LayerCache {
  /** The layer's committed snapshot, unpacking its blob when there is none; concurrent calls unpack once. */
  acquire(diffId: Digest, signal?: AbortSignal): Promise<LayerRef>;
  /** Acquire several layers, a few unpacks at a time; refs in order. */
  acquireAll(diffIds: readonly Digest[], signal?: AbortSignal): Promise<LayerRef[]>;
  /** A mounted writable overlay over the layers (bottom first; a layer listed twice is mounted once, topmost). */
  mount(diffIds: readonly Digest[]): Promise<ActiveSnapshot>;
  /**
   * Unmount `snap` and turn its changes into a layer: tar, diffID, gzip blob, contentId, record and committed snapshot.
   * Null (and `snap` released) when nothing changed.
   */
  commit(snap: ActiveSnapshot, opts?: CommitOptions): Promise<CommittedLayer | null>;
  /** Write a directory (not an overlay upper) or a tar file (plain or gzip) as a recorded layer: `kiln import`. */
  importLayer(source: string): Promise<{ diffId: Digest; descriptor: Descriptor }>;
  /** Record an image's layers (diffId ↔ blob) so they can be unpacked; an existing record keeps its contentId. */
  register(layers: readonly Descriptor[], diffIds: readonly Digest[]): void;
  /** The layer's contentId when its record and blob are present (a cache hit can use it), else undefined. */
  usable(diffId: Digest): { contentId: string } | undefined;
}
