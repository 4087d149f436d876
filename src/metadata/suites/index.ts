export type { RepoFactory } from './factory.js';
export { imageRepoSuite } from './images.suite.js';
export { layerRepoSuite } from './layers.suite.js';
export { cacheRecordRepoSuite } from './cache-records.suite.js';
export { buildRepoSuite } from './builds.suite.js';
export { statCacheRepoSuite } from './stat-cache.suite.js';
export { leaseRepoSuite } from './leases.suite.js';
