export { createOpRunner } from './runner.js';
export { resolveChown } from './users.js';
export { lockCacheMount, cacheMountDir } from './cache-mount.js';
export type { CacheMountHandle } from './cache-mount.js';
export type { OpsOptions, LocalImage, SecretSource } from './types.js';
