import { existsSync, readdirSync, statSync } from 'node:fs';
import { BuildError, whileWriting } from '../errors/index.js';
import { writeLayer } from '../layer/index.js';
import type { Descriptor, Digest } from '../oci/index.js';
import { trace } from '../progress/index.js';
import { dropCopyUps, type ActiveSnapshot } from '../snapshot/index.js';
import { importBlob } from './import-layer.js';
import { unpackLayer } from './unpack.js';
import type { CommitOptions, CommittedLayer, LayerCache, LayerCacheDeps, LayerRef } from './types.js';

/** Layers unpacked at the same time by `acquireAll`: gunzip runs on the thread pool while another's files are written. */
const PARALLEL = 2;

/**
 * A layer cache over the state's records, blobs and snapshots. Unpacks are shared by every caller of this cache (one
 * per layer at a time); with a lease, every layer it hands out or writes is protected from GC until the lease ends.
 *
 * @example
 * const cache = createLayerCache({ records: layerRecordsOf(db), store, snapshots, lease });
 * const snap = await cache.mount(parentLayers);
 * ... write into snap.mountpoint ...
 * const layer = await cache.commit(snap); // null when nothing changed
 */
export function createLayerCache(o: LayerCacheDeps): LayerCache {
  const unpacking = new Map<Digest, Promise<number>>();
  /** layers already added to the lease by this cache (one lease row each, written once) */
  const held = new Set<string>();
  const hold = (diffIds: Iterable<string>): void => {
    if (!o.lease) return;
    const fresh = [...diffIds].filter((d) => !held.has(d));
    if (fresh.length === 0) return;
    o.lease.addLayers(fresh);
    for (const d of fresh) held.add(d);
  };

  /** The snapshot id of the unpacked layer; a remembered unpack whose directory went away (GC) is redone. */
  function snapshotOf(diffId: Digest, signal?: AbortSignal): Promise<number> {
    const p = unpacking.get(diffId);
    if (p) {
      return p.then((id) => {
        if (existsSync(o.snapshots.dir(id))) return id;
        if (unpacking.get(diffId) === p) unpacking.delete(diffId);
        return snapshotOf(diffId, signal);
      });
    }
    const started = unpackLayer(o, diffId, signal);
    unpacking.set(diffId, started);
    started.catch(() => unpacking.get(diffId) === started && unpacking.delete(diffId));
    return started;
  }

  async function acquire(diffId: Digest, signal?: AbortSignal): Promise<LayerRef> {
    hold([diffId]);
    const snapshotId = await snapshotOf(diffId, signal);
    const dir = o.snapshots.dir(snapshotId);
    let released = false;
    return {
      diffId,
      snapshotId,
      dir,
      usable: () => !released && existsSync(dir),
      release: () => void (released = true),
    };
  }

  return {
    acquire,
    async acquireAll(diffIds, signal) {
      const unique = [...new Set(diffIds)];
      const refs = new Map<Digest, LayerRef>();
      let next = 0;
      const worker = async (): Promise<void> => {
        while (next < unique.length) {
          const d = unique[next++]!;
          refs.set(d, await acquire(d, signal));
        }
      };
      await Promise.all(Array.from({ length: Math.min(PARALLEL, unique.length) }, worker));
      return diffIds.map((d) => refs.get(d)!);
    },
    async mount(diffIds) {
      // the same layer twice (identical steps) is one snapshot: overlayfs refuses a lowerdir listed twice (ELOOP),
      // and only its topmost occurrence matters
      const refs = await Promise.all(diffIds.map((d) => acquire(d)));
      const lowers = refs.map((r) => r.snapshotId).filter((id, i, all) => all.indexOf(id, i + 1) < 0);
      const snap = await o.snapshots.prepare({ lowers });
      try {
        await snap.mount();
      } catch (err) {
        await snap.release();
        throw err;
      }
      return snap;
    },
    async commit(snap, opts = {}) {
      const layer = await commitUpper(o, snap, opts);
      if (layer) hold([layer.diffId]);
      return layer;
    },
    async importLayer(source) {
      const b = await importBlob(o.store, source);
      record(o, b.descriptor, b.diffId, b.contentId);
      hold([b.diffId]);
      return { diffId: b.diffId, descriptor: b.descriptor };
    },
    register(layers, diffIds) {
      if (diffIds.length !== layers.length) throw new BuildError('ERR_KILN_IMAGE_INVALID', `image has ${layers.length} layers but ${diffIds.length} diff_ids`);
      o.records.tx(() => {
        layers.forEach((l, i) => {
          const diffId = diffIds[i]!;
          if (o.records.getLayer(diffId)?.blob !== l.digest) record(o, l, diffId, diffId);
        });
      });
    },
    usable(diffId) {
      const rec = o.records.getLayer(diffId);
      if (!rec) return undefined;
      try {
        if (statSync(o.store.path(rec.blob)).size !== rec.blobSize) return undefined;
      } catch {
        return undefined;
      }
      o.records.touchLayer(diffId);
      hold([diffId]);
      return { contentId: rec.contentId };
    },
  };
}

/**
 * Record a layer (diffId ↔ blob). A layer already recorded keeps its contentId and snapshot: a layer's contentId is
 * fixed when it is first recorded, so a run and a later cache hit of the same layer chain the same output ids.
 */
function record(o: LayerCacheDeps, blob: Descriptor, diffId: Digest, contentId: string, snapshotId: number | null = null): void {
  const existing = o.records.getLayer(diffId);
  o.records.putLayer({ diffId, blob: blob.digest, blobSize: blob.size, mediaType: blob.mediaType, contentId: existing?.contentId ?? contentId, snapshotId: snapshotId ?? existing?.snapshotId ?? null });
}

/** Turn an active snapshot's changes into a layer (see {@link LayerCache.commit}). */
async function commitUpper(o: LayerCacheDeps, snap: ActiveSnapshot, opts: CommitOptions): Promise<CommittedLayer | null> {
  await snap.unmount();
  dropCopyUps(snap.upperDir, snap.lowerDirs);
  if (readdirSync(snap.upperDir).length === 0) {
    await snap.release();
    return null;
  }
  const tLayer = Date.now();
  const info = await writeLayer({
    dir: snap.upperDir,
    ingester: o.store,
    compression: 'gzip',
    overlay: true,
    // gzip members are cached only for context COPY steps, whose reruns mostly repeat the last result
    // other layers (RUN output) are compressed as members in parallel on the thread pool: every core, not one
    // (bench/gzip-parallel.ts: 690 MB of /usr/lib, 36 s -> 23 s with the second core free, the same when it is busy)
    ...(opts.chunkCacheDir ? { chunkCache: { dir: opts.chunkCacheDir } } : { parallelGzip: true }),
    ...(opts.signal ? { signal: opts.signal } : {}),
    ...(opts.sourceDateEpoch !== undefined ? { sourceDateEpoch: opts.sourceDateEpoch } : {}),
  }).catch((err: unknown) => {
    throw whileWriting(err, { what: 'a layer blob', where: o.store.root });
  });
  trace(`layer ${info.entries} entries, ${info.uncompressedSize} bytes: ${Date.now() - tLayer} ms`);
  const descriptor: Descriptor = { mediaType: info.mediaType, digest: info.digest, size: info.size };
  const existing = o.records.getLayer(info.diffId);
  // content identity without mtimes: a rerun that writes the same files keeps later steps cached (early cutoff)
  const done = (): CommittedLayer => ({ diffId: info.diffId, contentId: existing?.contentId ?? info.contentId, uncompressedSize: info.uncompressedSize, descriptor });
  if (existing?.snapshotId != null && o.records.getSnapshot(existing.snapshotId)?.state === 'committed') {
    // the same layer is already unpacked: keep that one
    o.records.touchLayer(info.diffId);
    await snap.release();
    return done();
  }
  const id = await snap.commit();
  o.records.tx(() => {
    o.records.commitSnapshot(id, info.diffId);
    // the writer's walk already stat'ed every file: GC after the build reads this instead of walking the snapshot
    o.records.putSnapshotSize(id, info.diskBytes);
    record(o, descriptor, info.diffId, info.contentId, id);
  });
  return done();
}
