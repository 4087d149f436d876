import { lstatSync, readdirSync, readFileSync, type Stats } from 'node:fs';
import path from 'node:path';
import type { CacheRecord, Metadata } from '../metadata/index.js';
import type { ContentStore } from '../store/index.js';
import { listCacheMounts, type CacheMountInfo } from '../cache/index.js';
import { readProtection, type Protection } from '../cache/index.js';
import { diskStats } from './config.js';

/** What GC needs of an opened state directory. */
export interface GcState {
  root: string;
  db: Pick<Metadata, 'images' | 'layers' | 'cacheRecords' | 'builds' | 'leases' | 'transaction'>;
  store: ContentStore;
}

export interface LayerInfo {
  diffId: string;
  blob: string;
  /** bytes on disk of the blob, 0 when missing */
  blobBytes: number;
  blobExists: boolean;
  snapshotId: number | null;
  snapshotBytes: number;
  created: number;
  lastUsed: number;
}

export interface SnapshotInfo {
  id: number;
  diffId: string | null;
  state: string;
  created: number;
  bytes: number;
  /** the layer whose unpacked copy this is */
  layer?: string;
}

export interface BlobFile {
  digest: string;
  bytes: number;
  mtimeMs: number;
}

export interface ImageRefs {
  name: string;
  manifest: string;
  /** every blob the image needs to be exported: index, manifests, configs, layers */
  blobs: string[];
  diffIds: string[];
}

/** Everything in a state directory that GC, prune and du reason about. */
export interface Inventory {
  now: number;
  root: string;
  records: CacheRecord[];
  layers: Map<string, LayerInfo>;
  snapshots: Map<number, SnapshotInfo>;
  blobs: Map<string, BlobFile>;
  images: ImageRefs[];
  /** blob digest → names of tagged images that need it */
  imageBlobs: Map<string, string[]>;
  /** layer diffId → names of tagged images that use it */
  imageDiffIds: Map<string, string[]>;
  cacheMounts: CacheMountInfo[];
  protection: Protection;
  /** bytes on disk under the state directory (hardlinks once, other file systems not entered) */
  totalBytes: number;
  /** metadata.db and its WAL/SHM */
  metadataBytes: number;
  /** build logs under history/ */
  historyBytes: number;
  disk: { total: number; free: number };
}

/** Bytes on disk of one stat (st_blocks, as du counts). */
export function statBytes(st: Stats): number {
  return st.blocks * 512;
}

/**
 * Bytes on disk under `p` (st_blocks; hardlinks counted once via `seen`; other file systems not entered). `sizeOf`
 * may answer for a sub-path without walking it (cached sizes of immutable snapshots).
 */
export function treeBytes(p: string, opts: { seen?: Set<string>; dev?: number; sizeOf?: (p: string) => number | undefined } = {}): number {
  const seen = opts.seen ?? new Set<string>();
  let st: Stats;
  try {
    st = lstatSync(p);
  } catch {
    return 0;
  }
  const dev = opts.dev ?? st.dev;
  const key = `${st.dev}:${st.ino}`;
  if (seen.has(key)) return 0;
  seen.add(key);
  let total = statBytes(st);
  if (!st.isDirectory() || st.dev !== dev) return total;
  let names: string[];
  try {
    names = readdirSync(p);
  } catch {
    return total;
  }
  for (const n of names) {
    const child = path.join(p, n);
    const known = opts.sizeOf?.(child);
    total += known !== undefined ? known : treeBytes(child, { seen, dev, ...(opts.sizeOf ? { sizeOf: opts.sizeOf } : {}) });
  }
  return total;
}

function readJson<T>(file: string): T | undefined {
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as T;
  } catch {
    return undefined;
  }
}

/** The blobs and layers a tagged image needs (an index's manifests included). Missing blobs are skipped. */
export function imageClosure(store: ContentStore, manifest: string): { blobs: string[]; diffIds: string[] } {
  const blobs: string[] = [];
  const diffIds: string[] = [];
  const visit = (d: string, depth: number): void => {
    if (blobs.includes(d) || depth > 3) return;
    blobs.push(d);
    const m = readJson<{ manifests?: Array<{ digest: string }>; config?: { digest: string }; layers?: Array<{ digest: string }> }>(store.path(d as `sha256:${string}`));
    if (!m) return;
    for (const c of m.manifests ?? []) visit(c.digest, depth + 1);
    if (m.config) {
      blobs.push(m.config.digest);
      const cfg = readJson<{ rootfs?: { diff_ids?: string[] } }>(store.path(m.config.digest as `sha256:${string}`));
      diffIds.push(...(cfg?.rootfs?.diff_ids ?? []));
    }
    for (const l of m.layers ?? []) blobs.push(l.digest);
  };
  visit(manifest, 0);
  return { blobs, diffIds };
}

/** Size of a committed snapshot, from the size table or measured once (committed snapshots never change). */
function snapshotBytes(s: GcState, id: number, cached: Map<number, number>, dir: string): number {
  const known = cached.get(id);
  if (known !== undefined) return known;
  const bytes = treeBytes(dir);
  s.db.layers.putSnapshotSize(id, bytes);
  cached.set(id, bytes);
  return bytes;
}

/** Read everything GC needs: records, layers, snapshots, blobs, images, cache mounts, leases and disk usage. */
export async function collectInventory(s: GcState, opts: { selfLeaseId?: string; signal?: AbortSignal } = {}): Promise<Inventory> {
  const now = Date.now();
  const protection = readProtection(s.db.leases, opts.selfLeaseId ? { selfLeaseId: opts.selfLeaseId } : {});
  const records = s.db.cacheRecords.listCache();
  const blobDir = path.join(s.store.root, 'blobs', 'sha256');
  const blobs = new Map<string, BlobFile>();
  for (const name of readdirSafe(blobDir)) {
    try {
      const st = lstatSync(path.join(blobDir, name));
      blobs.set(`sha256:${name}`, { digest: `sha256:${name}`, bytes: statBytes(st), mtimeMs: st.mtimeMs });
    } catch {
      /* removed meanwhile */
    }
  }
  const snapRoot = path.join(s.root, 'snapshots');
  const sizes = s.db.layers.snapshotSizes();
  const snapshots = new Map<number, SnapshotInfo>();
  for (const r of s.db.layers.listSnapshotRows()) {
    const dir = path.join(snapRoot, String(r.id));
    const bytes = r.state === 'committed' ? snapshotBytes(s, r.id, sizes, dir) : treeBytes(dir);
    snapshots.set(r.id, { id: r.id, diffId: r.diffId, state: r.state, created: r.created, bytes });
  }
  const layers = new Map<string, LayerInfo>();
  for (const l of s.db.layers.listLayers()) {
    const b = blobs.get(l.blob);
    const snap = l.snapshotId !== null ? snapshots.get(l.snapshotId) : undefined;
    if (snap) snap.layer = l.diffId;
    layers.set(l.diffId, {
      diffId: l.diffId,
      blob: l.blob,
      blobBytes: b?.bytes ?? 0,
      blobExists: b !== undefined,
      snapshotId: snap ? snap.id : null,
      snapshotBytes: snap?.bytes ?? 0,
      created: l.created,
      lastUsed: l.lastUsed,
    });
  }
  const images: ImageRefs[] = [];
  const imageBlobs = new Map<string, string[]>();
  const imageDiffIds = new Map<string, string[]>();
  for (const img of s.db.images.listImages()) {
    const c = imageClosure(s.store, img.manifest);
    images.push({ name: img.name, manifest: img.manifest, ...c });
    for (const b of c.blobs) imageBlobs.set(b, [...(imageBlobs.get(b) ?? []), img.name]);
    for (const d of c.diffIds) imageDiffIds.set(d, [...(imageDiffIds.get(d) ?? []), img.name]);
  }
  const cacheMounts = await listCacheMounts({ stateDir: s.root, ...(opts.signal ? { signal: opts.signal } : {}) });
  const mountBases = new Map(cacheMounts.map((m) => [path.dirname(m.dir), m.size]));
  // the -shm file is SQLite's shared-memory index, gone when the last connection closes: not counted
  const shm = path.join(s.root, 'metadata.db-shm');
  const metaBytes = ['metadata.db', 'metadata.db-wal'].reduce((a, f) => a + treeBytes(path.join(s.root, f)), 0);
  const historyBytes = treeBytes(path.join(s.root, 'history'));
  const totalBytes = treeBytes(s.root, {
    sizeOf: (p) => {
      if (p === shm) return 0;
      if (path.dirname(p) === snapRoot) {
        const id = /^\d+$/.test(path.basename(p)) ? Number(path.basename(p)) : NaN;
        const snap = snapshots.get(id);
        if (snap && snap.state === 'committed') return snap.bytes;
      }
      return mountBases.get(p);
    },
  });
  return {
    now,
    root: s.root,
    records,
    layers,
    snapshots,
    blobs,
    images,
    imageBlobs,
    imageDiffIds,
    cacheMounts,
    protection,
    totalBytes,
    metadataBytes: metaBytes,
    historyBytes,
    disk: await diskStats(s.root),
  };
}

function readdirSafe(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}
