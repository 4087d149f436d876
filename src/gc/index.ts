/**
 * Operating the cache: usage accounting (`kiln du`), prune, the automatic GC policy, history retention; the leases it honours live in src/cache.
 */
export { collectInventory, treeBytes, imageClosure } from './inventory.js';
export type { GcState, Inventory, LayerInfo, SnapshotInfo, BlobFile, ImageRefs } from './inventory.js';
export { planPrune, parseItemType, ITEM_TYPES } from './plan.js';
export type { ItemType, PruneFilters, SpaceLimits, PlanOptions, PruneAction, PrunePlan } from './plan.js';
export { applyPlan } from './apply.js';
export type { ApplyResult, Removed } from './apply.js';
export { prune, previewPrune } from './prune.js';
export type { PruneOutcome } from './prune.js';
export { runAutoGc, gcLine } from './auto.js';
export type { AutoGcResult } from './auto.js';
export { usageReport } from './usage.js';
export type { UsageRow, UsageReport } from './usage.js';
export { trimHistory, historyDir } from './history.js';
export { readConfigFile, resolveGcPolicy, resolveHistoryPolicy, diskStats, DEFAULT_MAX_BUILDS, DEFAULT_MAX_LOG_BYTES } from './config.js';
export type { GcPolicy, GcPolicyConfig, HistoryConfig, HistoryPolicy } from './config.js';
export { parseSize, parseSpace, resolveSpace, parseDuration, formatBytes, formatAgo } from './units.js';
export type { SpaceSpec } from './units.js';
export { finishBuild, abandonBuild, pinBlobs, historyPolicy } from './build-hooks.js';
export { parseFilters } from './filters.js';
