export { createOpRunner } from './runner.js';
export { resolveChown } from './users.js';
export { lockCacheMount, cacheMountDir, cacheMountKey, listCacheMounts, removeCacheMounts, diskUsage } from './cache-mount.js';
export type { CacheMountHandle, CacheMountInfo, LockCacheMountOptions, CacheMountOpened } from './cache-mount.js';
export type { BuildLimits, LocalContext, OpsOptions, LocalImage, SecretSource } from './types.js';
export { cleanSecretMounts } from './secret-mounts.js';
