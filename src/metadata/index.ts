export type { ImageRecord, ImageRepo } from './images.js';
export type { LayerRecord, LayerRecords, LayerRepo, SnapshotRecords, SnapshotRow } from './layers.js';
export type { CacheRecord, CacheRecordRepo, PortableCacheRecord } from './cache-records.js';
export type { BuildRecord, BuildRepo } from './builds.js';
export type { StatCacheRepo } from './stat-cache.js';
export type { LeaseRecord, LeaseRepo } from './leases.js';
export type { Metadata } from './metadata.js';
export { openSqliteMetadata as openMetadata, translateSqliteError } from './sqlite/index.js';
