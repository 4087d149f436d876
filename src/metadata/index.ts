export type { ImageRecord, LayerRecord, CacheRecord, BuildRecord, LeaseRecord } from './types.js';
export { MetadataDb, openMetadataDb, translateSqliteError } from './sqlite.js';
