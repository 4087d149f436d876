import type { Inventory } from './inventory.js';
import { planPrune, type ItemType, type PruneFilters } from './plan.js';

/** One line of `kiln du`. */
export interface UsageRow {
  type: ItemType | 'image';
  id: string;
  /** bytes on disk */
  size: number;
  /** bytes `kiln prune --all` would free of it */
  reclaimable: number;
  /** used by a tagged image or by several cache records */
  shared: boolean;
  lastUsed: number | null;
  useCount: number | null;
  /** what it belongs to: the step that made it, image names, the cache mount id */
  owner: string;
  details: Record<string, string>;
}

export interface UsageReport {
  rows: UsageRow[];
  /** bytes of layers shared with tagged images or between records */
  shared: number;
  /** bytes of everything else listed */
  private: number;
  /** metadata.db (+WAL), build logs, temp files and folder entries */
  metadata: number;
  reclaimable: number;
  total: number;
}

/**
 * Usage by item from an inventory: every cache record (with the bytes of its layer), image layers and image blobs,
 * loose blobs and snapshots, cache mounts. Totals count each byte once; `total` is the whole state directory.
 */
export function usageReport(inv: Inventory, filters: PruneFilters = {}): UsageReport {
  const plan = planPrune(inv, { all: true });
  const gone = { snapshots: new Set<number>(), blobs: new Set<string>(), mounts: new Set<string>() };
  for (const a of plan.actions) {
    if (a.kind === 'layer') {
      if (a.snapshotId !== null) gone.snapshots.add(a.snapshotId);
      if (a.removeBlob) gone.blobs.add(a.blob);
    } else if (a.kind === 'snapshot') gone.snapshots.add(a.id);
    else if (a.kind === 'blob') gone.blobs.add(a.digest);
    else if (a.kind === 'cache-mount') gone.mounts.add(a.key);
  }
  const refCount = new Map<string, number>();
  for (const r of inv.records) if (r.diffId) refCount.set(r.diffId, (refCount.get(r.diffId) ?? 0) + 1);
  const layerBytes = (diffId: string): { size: number; reclaimable: number } => {
    const l = inv.layers.get(diffId);
    if (!l) return { size: 0, reclaimable: 0 };
    const rec = (l.snapshotId !== null && gone.snapshots.has(l.snapshotId) ? l.snapshotBytes : 0) + (gone.blobs.has(l.blob) ? l.blobBytes : 0);
    return { size: l.blobBytes + l.snapshotBytes, reclaimable: rec };
  };
  const isShared = (diffId: string): boolean => inv.imageDiffIds.has(diffId) || (refCount.get(diffId) ?? 0) > 1;

  const rows: UsageRow[] = [];
  const counted = new Set<string>();
  let shared = 0;
  let priv = 0;
  const account = (key: string, bytes: number, isSh: boolean): void => {
    if (counted.has(key)) return;
    counted.add(key);
    if (isSh) shared += bytes;
    else priv += bytes;
  };
  for (const r of inv.records) {
    const b = r.diffId ? layerBytes(r.diffId) : { size: 0, reclaimable: 0 };
    const sh = r.diffId ? isShared(r.diffId) : false;
    if (r.diffId) account(`layer:${r.diffId}`, b.size, sh);
    rows.push({
      type: 'cache',
      id: r.key,
      size: b.size,
      reclaimable: b.reclaimable,
      shared: sh,
      lastUsed: r.lastUsed,
      useCount: r.useCount,
      owner: r.name,
      details: { ...(r.diffId ? { layer: r.diffId } : { layer: '(none: config-only step)' }), created: new Date(r.created).toISOString() },
    });
  }
  for (const l of inv.layers.values()) {
    if ((refCount.get(l.diffId) ?? 0) > 0) continue;
    const b = layerBytes(l.diffId);
    const names = inv.imageDiffIds.get(l.diffId);
    account(`layer:${l.diffId}`, b.size, !!names);
    rows.push({
      type: 'layer',
      id: l.diffId,
      size: b.size,
      reclaimable: b.reclaimable,
      shared: !!names,
      lastUsed: l.lastUsed,
      useCount: null,
      owner: names ? names.join(', ') : '(unreferenced)',
      details: { blob: l.blob, unpacked: l.snapshotId !== null ? `snapshot ${l.snapshotId}` : 'no' },
    });
  }
  const layerBlobs = new Set([...inv.layers.values()].map((l) => l.blob));
  for (const img of inv.images) {
    const own = img.blobs.filter((d) => !layerBlobs.has(d) && inv.blobs.has(d));
    const size = own.reduce((n, d) => n + (counted.has(`blob:${d}`) ? 0 : inv.blobs.get(d)!.bytes), 0);
    for (const d of own) account(`blob:${d}`, inv.blobs.get(d)!.bytes, true);
    rows.push({ type: 'image', id: img.manifest, size, reclaimable: 0, shared: true, lastUsed: null, useCount: null, owner: img.name, details: { blobs: String(own.length) } });
  }
  for (const b of inv.blobs.values()) {
    if (layerBlobs.has(b.digest) || inv.imageBlobs.has(b.digest)) continue;
    account(`blob:${b.digest}`, b.bytes, false);
    rows.push({ type: 'blob', id: b.digest, size: b.bytes, reclaimable: gone.blobs.has(b.digest) ? b.bytes : 0, shared: false, lastUsed: b.mtimeMs, useCount: null, owner: '(unreferenced manifest, config or leftover)', details: {} });
  }
  for (const sn of inv.snapshots.values()) {
    if (sn.layer) continue;
    account(`snap:${sn.id}`, sn.bytes, false);
    rows.push({ type: 'snapshot', id: String(sn.id), size: sn.bytes, reclaimable: gone.snapshots.has(sn.id) ? sn.bytes : 0, shared: false, lastUsed: sn.created, useCount: null, owner: sn.state === 'committed' ? '(orphaned)' : `(${sn.state}: a running build)`, details: {} });
  }
  for (const m of inv.cacheMounts) {
    account(`mount:${m.key}`, m.size, false);
    rows.push({
      type: 'cache-mount',
      id: m.id,
      size: m.size,
      reclaimable: gone.mounts.has(m.key) ? m.size : 0,
      shared: false,
      lastUsed: m.lastUsed,
      useCount: m.uses,
      owner: `RUN --mount=type=cache,id=${m.id}${m.inUse ? ' (in use)' : ''}`,
      details: { key: m.key, builds: m.builds.slice(0, 5).join(', ') },
    });
  }
  const filtered = rows.filter((r) => {
    if (filters.types?.length && !filters.types.includes(r.type)) return false;
    if (filters.ids?.length && !filters.ids.some((p) => r.id.startsWith(p) || r.id.replace(/^sha256:/, '').startsWith(p.replace(/^sha256:/, '')))) return false;
    if (filters.untilMs !== undefined && (r.lastUsed === null || r.lastUsed > inv.now - filters.untilMs)) return false;
    return true;
  });
  return { rows: filtered, shared, private: priv, metadata: Math.max(0, inv.totalBytes - shared - priv), reclaimable: plan.bytes, total: inv.totalBytes };
}
