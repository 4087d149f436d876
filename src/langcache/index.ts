export { LANG_CACHE_LAYOUT, LANG_CACHE_PATH_DIRS, LANG_CACHE_ROOT, langCacheTools } from './layout.js';
export type { LangCacheEntry } from './layout.js';
export { langCachePlan, selectLangCaches, withLangCacheEnv } from './plan.js';
export type { LangCacheOptions, LangCachePlan } from './plan.js';
export { withLangCache } from './graph.js';
export type { ApplyLangCacheOptions } from './graph.js';
