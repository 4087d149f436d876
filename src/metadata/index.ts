export type { ImageRecord, LayerRecord, CacheRecord, PortableCacheRecord, BuildRecord, LeaseRecord } from './types.js';
export { MetadataDb, openMetadataDb, translateSqliteError } from './sqlite.js';
