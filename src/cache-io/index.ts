export { exportCache, collectCache, writeCacheManifest, inlineCache, CACHE_CONFIG_MEDIA_TYPE, INLINE_CACHE_FIELD, ANNOTATION_DIFF_ID } from './export.js';
export type { ExportCacheOptions } from './export.js';
export { importCache } from './import.js';
export type { ImportCacheOptions } from './import.js';
export { parseCacheTo, parseCacheFrom } from './spec.js';
export type { CacheMode, CacheExportSpec, CacheImportSpec, CacheStores, CacheEntry, CacheLayer, CacheConfig, CacheImportReport, CacheExportReport } from './types.js';
