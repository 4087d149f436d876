export { createOpRunner } from './runner.js';
export { resolveChown } from './users.js';
/** the size of a directory tree (defined with the cache mounts); re-exported for src/run, which reaches ops, not cache */
export { diskUsage } from '../cache/index.js';
export type { BuildLimits, LocalContext, OpsOptions, LocalImage } from './types.js';
export { cleanSecretMounts } from './secret-mounts.js';
