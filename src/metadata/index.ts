export type { ImageRecord, LayerRecord, CacheRecord, BuildRecord } from './types.js';
export { MetadataDb, openMetadataDb } from './sqlite.js';
