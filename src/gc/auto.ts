import { applyPlan, type ApplyResult } from './apply.js';
import { diskStats, readConfigFile, resolveGcPolicy, resolveHistoryPolicy } from './config.js';
import { trimHistory } from './history.js';
import { collectInventory, type GcState } from './inventory.js';
import { planPrune } from './plan.js';
import { formatBytes } from './units.js';

export interface AutoGcResult {
  /** the one log line (undefined when nothing was removed) */
  line?: string;
  result?: ApplyResult;
  usedAfter?: number;
  limit?: number;
}

/**
 * The automatic GC run after each build: trims history to its configured count, then, if the state directory is over
 * `gc.maxUsedSpace` or the disk has less than `gc.minFreeSpace` free, removes least-recently-used cache (cache mounts
 * included) until both hold. What the caller's lease protects (the build that just ran) stays.
 */
export async function runAutoGc(s: GcState, opts: { selfLeaseId?: string; signal?: AbortSignal } = {}): Promise<AutoGcResult> {
  const cfg = readConfigFile(s.root);
  await trimHistory({ root: s.root, db: s.db, maxBuilds: resolveHistoryPolicy(cfg.history).maxBuilds });
  const disk = await diskStats(s.root);
  const policy = resolveGcPolicy(cfg.gc, disk.total);
  if (!policy.enabled) return {};
  const inv = await collectInventory(s, opts);
  const plan = planPrune(inv, {
    all: true,
    includeCacheMounts: true,
    limits: { maxUsedSpace: policy.maxUsedSpace, minFreeSpace: policy.minFreeSpace, reservedSpace: policy.reservedSpace },
    ...(policy.keepDurationMs > 0 ? { filters: { untilMs: policy.keepDurationMs } } : {}),
  });
  if (plan.actions.length === 0) return { usedAfter: inv.totalBytes, limit: policy.maxUsedSpace };
  const result = await applyPlan(s, inv, plan.actions, opts);
  const usedAfter = inv.totalBytes - result.bytes;
  return { line: gcLine(result, usedAfter, policy.maxUsedSpace), result, usedAfter, limit: policy.maxUsedSpace };
}

/** `gc: removed 3 cache records, 2 layers, 1 cache mount (12.3MB freed; kiln now uses 45.1MB, limit 50.0MB)` */
export function gcLine(r: ApplyResult, usedAfter: number, limit: number): string | undefined {
  if (r.removed.length === 0) return undefined;
  const counts = new Map<string, number>();
  const label: Record<string, [string, string]> = {
    record: ['cache record', 'cache records'],
    layer: ['layer', 'layers'],
    snapshot: ['unpacked snapshot', 'unpacked snapshots'],
    blob: ['blob', 'blobs'],
    'cache-mount': ['cache mount', 'cache mounts'],
  };
  for (const x of r.removed) counts.set(x.kind, (counts.get(x.kind) ?? 0) + 1);
  const parts = [...counts].map(([k, n]) => `${n} ${label[k]![n === 1 ? 0 : 1]}`);
  return `gc: removed ${parts.join(', ')} (${formatBytes(r.bytes)} freed; kiln now uses ${formatBytes(usedAfter)}, limit ${formatBytes(limit)})`;
}
