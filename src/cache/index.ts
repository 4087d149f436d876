/**
 * The cache part: layers, their blobs and their snapshots (refs), and the leases that keep what a running build holds
 * out of GC's reach. The runner, `kiln run`, image import/load/pull and GC go through it.
 */
export { createLayerCache } from './manager.js';
export { layerRecordsOf } from './records.js';
export type { LayerCache, LayerCacheDeps, LayerRef, LayerRecords, LeaseRecords, CommittedLayer, CommitOptions } from './types.js';
export { acquireLease, readProtection, removeDeadLeases } from './leases.js';
export type { BuildLease, Protection } from './leases.js';
/** cache mounts (`RUN --mount=type=cache`): opened by the exec op, listed and removed by `kiln cache` and GC */
export { lockCacheMount, cacheMountDir, cacheMountKey, listCacheMounts, removeCacheMounts, diskUsage } from './cache-mount.js';
export type { CacheMountHandle, CacheMountInfo, LockCacheMountOptions, CacheMountOpened } from './cache-mount.js';
/** a mounted writable overlay over a chain of refs, as `mount` hands it out (the snapshotter's type) */
export type { ActiveSnapshot } from '../snapshot/index.js';
