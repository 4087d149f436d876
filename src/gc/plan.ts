import type { Inventory, LayerInfo, SnapshotInfo } from './inventory.js';

/** Kinds of things prune removes; also the values of `--filter type=`. */
export type ItemType = 'cache' | 'layer' | 'snapshot' | 'blob' | 'cache-mount';
export const ITEM_TYPES: readonly ItemType[] = ['cache', 'layer', 'snapshot', 'blob', 'cache-mount'];

/** BuildKit's record types, accepted as aliases in `--filter type=`. */
const TYPE_ALIASES: Record<string, ItemType> = { regular: 'cache', record: 'cache', 'exec.cachemount': 'cache-mount', cachemount: 'cache-mount', mount: 'cache-mount' };

export function parseItemType(t: string): ItemType | undefined {
  const k = t.trim().toLowerCase();
  return (ITEM_TYPES as readonly string[]).includes(k) ? (k as ItemType) : TYPE_ALIASES[k];
}

export interface PruneFilters {
  types?: Array<ItemType | 'image'>;
  /** id prefixes (record keys, diffIds, snapshot ids, blob digests, cache mount ids) */
  ids?: string[];
  /** only entries not used for at least this long */
  untilMs?: number;
}

/** Space targets in bytes; any of them switches prune to "remove least recently used until met". */
export interface SpaceLimits {
  /** remove until the state directory uses at most this much */
  maxUsedSpace?: number;
  /** remove until the disk has at least this much free */
  minFreeSpace?: number;
  /** never remove below this much */
  reservedSpace?: number;
}

export interface PlanOptions {
  /** also records whose layer a tagged image shares, unpacked snapshots of image layers, and cache mounts */
  all?: boolean;
  filters?: PruneFilters;
  limits?: SpaceLimits;
  /** GC: cache mounts count as candidates */
  includeCacheMounts?: boolean;
}

export type PruneAction =
  | { kind: 'record'; key: string; name: string; diffId: string | null; bytes: 0 }
  | { kind: 'layer'; diffId: string; blob: string; snapshotId: number | null; removeBlob: boolean; bytes: number }
  | { kind: 'snapshot'; id: number; layer: string | null; created: number; bytes: number }
  | { kind: 'blob'; digest: string; bytes: number }
  | { kind: 'cache-mount'; key: string; id: string; bytes: number };

export interface PrunePlan {
  actions: PruneAction[];
  /** bytes the actions free */
  bytes: number;
  usedBefore: number;
  usedAfter: number;
  /** the space limits could not be met with what may be removed */
  limitsUnmet: boolean;
}

interface Unit {
  type: ItemType;
  ids: string[];
  lastUsed: number;
  dangling: boolean;
  eligible: boolean;
  run(): PruneAction[];
}

const stripAlgo = (s: string): string => s.replace(/^sha256:/, '');

/**
 * Decide what prune (or GC) removes: dangling data first, then least recently used. Nothing a tagged image needs,
 * nothing a live lease protects (refs, or created/used since the oldest live build started), nothing in use.
 * Pure: reads the inventory, returns actions in delete order (record → snapshot → blob).
 */
export function planPrune(inv: Inventory, opts: PlanOptions = {}): PrunePlan {
  const P = inv.protection;
  const T = P.threshold;
  const limits = opts.limits;
  const budget = !!limits && (limits.maxUsedSpace !== undefined || limits.minFreeSpace !== undefined);
  const filters = opts.filters ?? {};
  const refCount = new Map<string, number>();
  for (const r of inv.records) if (r.diffId) refCount.set(r.diffId, (refCount.get(r.diffId) ?? 0) + 1);
  const blobOwners = new Map<string, number>();
  for (const l of inv.layers.values()) blobOwners.set(l.blob, (blobOwners.get(l.blob) ?? 0) + 1);

  const removedLayers = new Set<string>();
  const removedSnapshots = new Set<number>();
  const removedBlobs = new Set<string>();
  const removedRecords = new Set<string>();

  const layerProtected = (l: LayerInfo): boolean => P.diffIds.has(l.diffId) || l.created >= T || l.lastUsed >= T;
  const blobKept = (d: string): boolean => {
    if (inv.imageBlobs.has(d) || P.blobs.has(d)) return true;
    const f = inv.blobs.get(d);
    return !!f && f.mtimeMs >= T;
  };
  const snapshotProtected = (sn: SnapshotInfo): boolean => {
    if (sn.state !== 'committed' || sn.created >= T) return true;
    const l = sn.layer ? inv.layers.get(sn.layer) : undefined;
    return !!l && layerProtected(l);
  };

  /** Remove a layer nothing uses any more: its snapshot, record and (unless an image needs it) blob. */
  const layerCascade = (l: LayerInfo): PruneAction[] => {
    if (removedLayers.has(l.diffId) || (refCount.get(l.diffId) ?? 0) > 0 || inv.imageDiffIds.has(l.diffId) || layerProtected(l)) return [];
    removedLayers.add(l.diffId);
    let bytes = 0;
    const snapshotId = l.snapshotId !== null && !removedSnapshots.has(l.snapshotId) ? l.snapshotId : null;
    if (snapshotId !== null) {
      removedSnapshots.add(snapshotId);
      bytes += l.snapshotBytes;
    }
    const removeBlob = l.blobExists && !removedBlobs.has(l.blob) && (blobOwners.get(l.blob) ?? 0) <= 1 && !blobKept(l.blob);
    if (removeBlob) {
      removedBlobs.add(l.blob);
      bytes += l.blobBytes;
    }
    return [{ kind: 'layer', diffId: l.diffId, blob: l.blob, snapshotId, removeBlob, bytes }];
  };

  const units: Unit[] = [];
  for (const r of inv.records) {
    const layer = r.diffId ? inv.layers.get(r.diffId) : undefined;
    const dangling = r.diffId !== null && (!layer || !layer.blobExists);
    const shared = r.diffId !== null && inv.imageDiffIds.has(r.diffId);
    units.push({
      type: 'cache',
      ids: [r.key, ...(r.diffId ? [r.diffId] : [])],
      lastUsed: r.lastUsed,
      dangling,
      eligible: r.lastUsed < T && r.created < T && (dangling || !shared || !!opts.all),
      run: () => {
        if (removedRecords.has(r.key)) return [];
        removedRecords.add(r.key);
        const out: PruneAction[] = [{ kind: 'record', key: r.key, name: r.name, diffId: r.diffId, bytes: 0 }];
        if (r.diffId) refCount.set(r.diffId, (refCount.get(r.diffId) ?? 1) - 1);
        if (layer) out.push(...layerCascade(layer));
        return out;
      },
    });
  }
  for (const l of inv.layers.values()) {
    if ((refCount.get(l.diffId) ?? 0) > 0 || inv.imageDiffIds.has(l.diffId)) continue;
    units.push({ type: 'layer', ids: [l.diffId, l.blob], lastUsed: l.lastUsed, dangling: true, eligible: !layerProtected(l), run: () => layerCascade(l) });
  }
  for (const sn of inv.snapshots.values()) {
    if (sn.state !== 'committed') continue;
    const orphan = !sn.layer;
    const imageLayer = !!sn.layer && inv.imageDiffIds.has(sn.layer);
    if (!orphan && !imageLayer) continue; // goes with its layer
    const layer = sn.layer ? inv.layers.get(sn.layer) : undefined;
    units.push({
      type: 'snapshot',
      ids: [String(sn.id), ...(sn.layer ? [sn.layer] : [])],
      lastUsed: layer?.lastUsed ?? sn.created,
      dangling: orphan,
      eligible: !snapshotProtected(sn) && (orphan || !!opts.all || budget),
      run: () => {
        if (removedSnapshots.has(sn.id)) return [];
        removedSnapshots.add(sn.id);
        return [{ kind: 'snapshot', id: sn.id, layer: sn.layer ?? null, created: sn.created, bytes: sn.bytes }];
      },
    });
  }
  for (const b of inv.blobs.values()) {
    if ((blobOwners.get(b.digest) ?? 0) > 0 || inv.imageBlobs.has(b.digest)) continue;
    units.push({
      type: 'blob',
      ids: [b.digest],
      lastUsed: b.mtimeMs,
      dangling: true,
      eligible: !blobKept(b.digest),
      run: () => {
        if (removedBlobs.has(b.digest)) return [];
        removedBlobs.add(b.digest);
        return [{ kind: 'blob', digest: b.digest, bytes: b.bytes }];
      },
    });
  }
  const mountsWanted = !!opts.all || !!opts.includeCacheMounts || !!filters.types?.includes('cache-mount');
  for (const m of inv.cacheMounts) {
    units.push({
      type: 'cache-mount',
      ids: [m.id, m.key],
      lastUsed: m.lastUsed,
      dangling: false,
      eligible: mountsWanted && !m.inUse && !P.otherBuildRunning,
      run: () => [{ kind: 'cache-mount', key: m.key, id: m.id, bytes: m.size }],
    });
  }

  const matches = (u: Unit): boolean => {
    if (filters.types?.length && !filters.types.includes(u.type)) return false;
    if (filters.ids?.length && !filters.ids.some((p) => u.ids.some((id) => id.startsWith(p) || stripAlgo(id).startsWith(stripAlgo(p))))) return false;
    if (filters.untilMs !== undefined && u.lastUsed > inv.now - filters.untilMs) return false;
    return true;
  };
  units.sort((a, b) => (a.dangling === b.dangling ? a.lastUsed - b.lastUsed : a.dangling ? -1 : 1));

  const actions: PruneAction[] = [];
  let freed = 0;
  const used = (): number => inv.totalBytes - freed;
  const needMore = (): boolean => {
    if (!budget) return true;
    if (limits!.reservedSpace !== undefined && used() <= limits!.reservedSpace) return false;
    if (limits!.maxUsedSpace !== undefined && used() > limits!.maxUsedSpace) return true;
    return limits!.minFreeSpace !== undefined && inv.disk.free + freed < limits!.minFreeSpace;
  };
  for (const u of units) {
    if (!needMore()) break;
    if (!u.eligible || !matches(u)) continue;
    for (const a of u.run()) {
      actions.push(a);
      freed += a.bytes;
    }
  }
  return { actions, bytes: freed, usedBefore: inv.totalBytes, usedAfter: inv.totalBytes - freed, limitsUnmet: budget && needMore() };
}
