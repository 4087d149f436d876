import { readFileSync, statSync, writeFileSync, renameSync } from 'node:fs';
import path from 'node:path';
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
  /** the inventory was not taken: nothing changed since the last full run (see runAutoGc's `ranNothing`) */
  skipped?: boolean;
}

/** Where the last full automatic GC left its mark (see {@link gcMarkHolds}). */
const MARK_FILE = 'gc-mark.json';
/** A mark older than this does not let a GC be skipped (time-based filters and other writers get their turn). */
const MARK_FRESH_MS = 5 * 60_000;

/** What a full GC run saw: when, and the modification times of the folders every new blob or snapshot lands in. */
interface GcMark {
  at: number;
  dirs: number[];
  /** the policy it applied (a changed gc config runs the GC) */
  policy: string;
}

function storeDirTimes(s: GcState): number[] {
  return [path.join(s.store.root, 'blobs', 'sha256'), path.join(s.root, 'snapshots')].map((d) => {
    try {
      return statSync(d).mtimeMs;
    } catch {
      return -1;
    }
  });
}

/**
 * Whether a full GC may be skipped after a build that ran no step: the last full run is recent and no blob or
 * snapshot was added or removed since (their folders' times are what it saw). Any doubt (no mark, unreadable,
 * stale, a folder changed) runs the GC.
 */
function gcMarkHolds(s: GcState, now: number, policy: string): boolean {
  try {
    const m = JSON.parse(readFileSync(path.join(s.root, MARK_FILE), 'utf8')) as GcMark;
    const dirs = storeDirTimes(s);
    return m.policy === policy && now - m.at >= 0 && now - m.at < MARK_FRESH_MS && Array.isArray(m.dirs) && m.dirs.length === dirs.length && m.dirs.every((t, i) => t === dirs[i]);
  } catch {
    return false;
  }
}

function writeGcMark(s: GcState, at: number, policy: string): void {
  const file = path.join(s.root, MARK_FILE);
  try {
    writeFileSync(`${file}.tmp`, JSON.stringify({ at, dirs: storeDirTimes(s), policy } satisfies GcMark));
    renameSync(`${file}.tmp`, file);
  } catch {
    /* no mark: the next build runs the GC */
  }
}

/**
 * The automatic GC run after each build: trims history to its configured count, then, if the state directory is over
 * `gc.maxUsedSpace` or the disk has less than `gc.minFreeSpace` free, removes least-recently-used cache (cache mounts
 * included) until both hold. What the caller's lease protects (the build that just ran) stays.
 *
 * `ranNothing` (every step of the build was cached): the inventory — a walk of the whole state directory — is
 * skipped when the last full run was recent, under the same policy, no blob or snapshot came or went since, and the
 * disk is not short of free space; such a build added only its history record, which trimming takes care of.
 */
export async function runAutoGc(s: GcState, opts: { selfLeaseId?: string; signal?: AbortSignal; ranNothing?: boolean } = {}): Promise<AutoGcResult> {
  const cfg = readConfigFile(s.root);
  await trimHistory({ root: s.root, db: s.db, maxBuilds: resolveHistoryPolicy(cfg.history).maxBuilds });
  const disk = await diskStats(s.root);
  const policy = resolveGcPolicy(cfg.gc, disk.total);
  if (!policy.enabled) return {};
  const started = Date.now();
  const policyText = JSON.stringify(policy);
  if (opts.ranNothing && disk.free >= policy.minFreeSpace && gcMarkHolds(s, started, policyText)) return { skipped: true };
  const result = await fullAutoGc(s, policy, opts);
  writeGcMark(s, started, policyText);
  return result;
}

async function fullAutoGc(s: GcState, policy: ReturnType<typeof resolveGcPolicy>, opts: { selfLeaseId?: string; signal?: AbortSignal }): Promise<AutoGcResult> {
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
