/**
 * Unpacking a layer's blob into a committed snapshot (an overlay lowerdir). A layer whose snapshot is committed and
 * present is never unpacked again.
 */
import { existsSync } from 'node:fs';
import { BuildError, whileWriting } from '../errors/index.js';
import { applyLayer } from '../layer/index.js';
import { diskUsage } from './cache-mount.js';
import type { Digest } from '../oci/index.js';
import type { LayerCacheDeps } from './types.js';

/** The committed snapshot present on disk for the layer `diffId`, if any. */
export function presentSnapshot(o: Pick<LayerCacheDeps, 'records' | 'snapshots'>, diffId: Digest): number | undefined {
  const rec = o.records.getLayer(diffId);
  if (rec?.snapshotId == null) return undefined;
  if (o.records.getSnapshot(rec.snapshotId)?.state !== 'committed' || !existsSync(o.snapshots.dir(rec.snapshotId))) return undefined;
  return rec.snapshotId;
}

/** The committed snapshot holding the layer `diffId`, unpacking its blob into a new one when there is none. */
export async function unpackLayer(o: LayerCacheDeps, diffId: Digest, signal?: AbortSignal): Promise<number> {
  const rec = o.records.getLayer(diffId);
  if (!rec) throw new BuildError('ERR_KILN_STORE_NOT_FOUND', `layer ${diffId} is not known to the store`);
  const present = presentSnapshot(o, diffId);
  if (present !== undefined) return present;
  const snap = await o.snapshots.create();
  try {
    await applyLayer({ source: o.store.path(rec.blob), dest: snap.dir, mode: 'overlay', ...(signal ? { signal } : {}) });
  } catch (err) {
    await snap.abort();
    throw whileWriting(err, { what: `layer ${diffId.slice(7, 19)} being unpacked`, where: snap.dir });
  }
  // measured once here (the snapshot never changes), so GC after each build reads it instead of walking
  const bytes = await diskUsage(snap.dir);
  const id = await snap.commit();
  o.records.tx(() => {
    o.records.commitSnapshot(id, diffId);
    o.records.putSnapshotSize(id, bytes);
    o.records.setLayerSnapshot(diffId, id);
  });
  return id;
}
