/**
 * Unpacking image layers into committed snapshots (overlay lowerdirs), once per layer: when an image arrives (import,
 * load, pull, a FROM that pulls) and, for layers that are not unpacked yet, when a build needs them. A layer whose
 * snapshot is committed and present is never unpacked again.
 */
import { existsSync } from 'node:fs';
import { BuildError, whileWriting } from '../errors/index.js';
import { applyLayer } from '../layer/index.js';
import type { Metadata } from '../metadata/index.js';
import type { Digest } from '../oci/index.js';
import type { Snapshotter } from '../snapshot/index.js';
import type { ContentStore } from '../store/index.js';

/** What unpacking needs of the state. */
export interface UnpackDeps {
  db: Pick<Metadata, 'layers' | 'transaction'>;
  store: ContentStore;
  snapshots: Snapshotter;
}

/** Layers unpacked at the same time: gunzip runs on the thread pool while the other layer's files are written. */
const PARALLEL = 2;

/** The committed snapshot holding the layer `diffId`, unpacking its blob into a new one when there is none. */
export async function unpackLayer(o: UnpackDeps, diffId: Digest, signal?: AbortSignal): Promise<number> {
  const rec = o.db.layers.getLayer(diffId);
  if (!rec) throw new BuildError('ERR_KILN_STORE_NOT_FOUND', `layer ${diffId} is not known to the store`);
  if (rec.snapshotId !== null && o.db.layers.getSnapshot(rec.snapshotId)?.state === 'committed' && existsSync(o.snapshots.dir(rec.snapshotId))) {
    return rec.snapshotId;
  }
  const snap = await o.snapshots.create();
  try {
    await applyLayer({ source: o.store.path(rec.blob), dest: snap.dir, mode: 'overlay', ...(signal ? { signal } : {}) });
  } catch (err) {
    await snap.abort();
    throw whileWriting(err, { what: `layer ${diffId.slice(7, 19)} being unpacked`, where: snap.dir });
  }
  const id = await snap.commit();
  o.db.transaction(() => {
    o.db.layers.commitSnapshot(id, diffId);
    o.db.layers.setLayerSnapshot(diffId, id);
  });
  return id;
}

/** Unpack every layer not unpacked yet, a few at a time; resolves with their snapshot ids in order. */
export async function unpackLayers(o: UnpackDeps, diffIds: readonly Digest[], signal?: AbortSignal): Promise<number[]> {
  const ids: number[] = new Array<number>(diffIds.length);
  const unique = [...new Set(diffIds)];
  const byDiff = new Map<Digest, number>();
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < unique.length) {
      const d = unique[next++]!;
      byDiff.set(d, await unpackLayer(o, d, signal));
    }
  };
  await Promise.all(Array.from({ length: Math.min(PARALLEL, unique.length) }, worker));
  diffIds.forEach((d, i) => (ids[i] = byDiff.get(d)!));
  return ids;
}
