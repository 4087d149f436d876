export type { ImageRecord, LayerRecord, CacheRecord, BuildRecord, LeaseRecord } from './types.js';
export { MetadataDb, openMetadataDb } from './sqlite.js';
