export { createOpRunner } from './runner.js';
export { resolveChown } from './users.js';
export type { BuildLimits, LocalContext, OpsOptions, LocalImage } from './types.js';
export { cleanSecretMounts } from './secret-mounts.js';
