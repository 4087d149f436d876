import { randomBytes } from 'node:crypto';
import { lstatSync, mkdirSync, promises as fsp, renameSync, unlinkSync } from 'node:fs';
import path from 'node:path';
import { removeCacheMounts } from '../cache/index.js';
import { readProtection, removeDeadLeases, type Protection } from '../cache/index.js';
import { treeBytes, type GcState, type Inventory } from './inventory.js';
import type { PruneAction } from './plan.js';

/** One thing prune removed. */
export interface Removed {
  kind: PruneAction['kind'];
  id: string;
  bytes: number;
  description: string;
}

export interface ApplyResult {
  removed: Removed[];
  /** actions skipped because a build started using the item after planning */
  skipped: number;
  bytes: number;
}

function mtime(p: string): number | undefined {
  try {
    return lstatSync(p).mtimeMs;
  } catch {
    return undefined;
  }
}

/**
 * Carry out a plan. Every action re-checks, inside one SQLite write transaction, that nothing references the item and
 * no live lease protects it, and unlinks blobs / renames snapshot dirs away within that transaction — so a build that
 * takes a reference (in its own transaction) either sees the item gone or keeps it. Renamed dirs are deleted after.
 */
export async function applyPlan(s: GcState, inv: Inventory, actions: PruneAction[], opts: { selfLeaseId?: string; signal?: AbortSignal } = {}): Promise<ApplyResult> {
  const removed: Removed[] = [];
  const trash: string[] = [];
  let skipped = 0;
  const tmp = path.join(s.root, 'tmp');
  mkdirSync(tmp, { recursive: true });
  const snapDir = (id: number): string => path.join(s.root, 'snapshots', String(id));
  const fresh = (): Protection => readProtection(s.db.leases, opts.selfLeaseId ? { selfLeaseId: opts.selfLeaseId } : {});

  const moveAway = (dir: string): void => {
    const to = path.join(tmp, `gc-trash-${randomBytes(6).toString('hex')}`);
    try {
      renameSync(dir, to);
      trash.push(to);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
  };
  const blobRemovable = (p: Protection, d: string): boolean => {
    if (p.blobs.has(d) || inv.imageBlobs.has(d) || s.db.layers.getLayerByBlob(d)) return false;
    const m = mtime(s.store.path(d as `sha256:${string}`));
    return m !== undefined && m < p.threshold;
  };

  const one = (a: PruneAction): Removed | undefined => {
    const p = fresh();
    switch (a.kind) {
      case 'record': {
        const r = s.db.cacheRecords.getCache(a.key);
        if (!r || r.lastUsed >= p.threshold || r.created >= p.threshold) return undefined;
        s.db.cacheRecords.deleteCache(a.key);
        return { kind: 'record', id: a.key, bytes: 0, description: a.name };
      }
      case 'layer': {
        const l = s.db.layers.getLayer(a.diffId);
        if (!l || p.diffIds.has(a.diffId) || l.created >= p.threshold || l.lastUsed >= p.threshold) return undefined;
        if (s.db.cacheRecords.countCacheByDiffId(a.diffId) > 0 || inv.imageDiffIds.has(a.diffId)) return undefined;
        let bytes = 0;
        if (l.snapshotId !== null) {
          moveAway(snapDir(l.snapshotId));
          s.db.layers.deleteSnapshot(l.snapshotId);
          s.db.layers.deleteSnapshotSize(l.snapshotId);
          if (l.snapshotId === a.snapshotId) bytes += inv.snapshots.get(l.snapshotId)?.bytes ?? 0;
        }
        s.db.layers.deleteLayer(a.diffId);
        if (a.removeBlob && blobRemovable(p, l.blob)) {
          unlinkSync(s.store.path(l.blob));
          bytes += inv.blobs.get(l.blob)?.bytes ?? 0;
        }
        return { kind: 'layer', id: a.diffId, bytes, description: 'layer' };
      }
      case 'snapshot': {
        const row = s.db.layers.getSnapshot(a.id);
        if (!row || row.state !== 'committed' || a.created >= p.threshold) return undefined;
        const l = a.layer ? s.db.layers.getLayer(a.layer) : undefined;
        if (l && (p.diffIds.has(l.diffId) || l.created >= p.threshold || l.lastUsed >= p.threshold)) return undefined;
        if (l && l.snapshotId === a.id) s.db.layers.setLayerSnapshot(l.diffId, null);
        moveAway(snapDir(a.id));
        s.db.layers.deleteSnapshot(a.id);
        s.db.layers.deleteSnapshotSize(a.id);
        return { kind: 'snapshot', id: String(a.id), bytes: a.bytes, description: a.layer ? `unpacked ${a.layer.slice(7, 19)}` : 'orphaned snapshot' };
      }
      case 'blob': {
        if (!blobRemovable(p, a.digest)) return undefined;
        unlinkSync(s.store.path(a.digest as `sha256:${string}`));
        return { kind: 'blob', id: a.digest, bytes: a.bytes, description: 'unreferenced blob' };
      }
      case 'cache-mount':
        return undefined; // handled outside the transaction (below)
    }
  };

  for (const a of actions) {
    opts.signal?.throwIfAborted();
    if (a.kind === 'cache-mount') {
      if (fresh().otherBuildRunning) {
        skipped++;
        continue;
      }
      try {
        await removeCacheMounts({ stateDir: s.root, ids: [a.key] });
        removed.push({ kind: 'cache-mount', id: a.id, bytes: a.bytes, description: `cache mount ${a.id}` });
      } catch {
        skipped++; // in use, or gone
      }
      continue;
    }
    const r = s.db.transaction(() => one(a));
    if (r) removed.push(r);
    else skipped++;
  }
  // derived caches (compressed layer pieces, incremental-COPY step indexes) are rebuilt on demand: drop them with
  // any prune that removes something, unless another build may be using them right now
  if (actions.length > 0 && !fresh().otherBuildRunning) {
    for (const d of ['layer-chunks', 'copy-steps']) {
      const p = path.join(s.root, d);
      const bytes = treeBytes(p);
      if (bytes === 0) continue;
      moveAway(p);
      removed.push({ kind: 'blob', id: d, bytes, description: `derived cache ${d}/` });
    }
  }
  removeDeadLeases(s.db.leases);
  for (const t of trash) await fsp.rm(t, { recursive: true, force: true, maxRetries: 3 });
  return { removed, skipped, bytes: removed.reduce((n, r) => n + r.bytes, 0) };
}
