import { promises as fsp, readFileSync } from 'node:fs';
import path from 'node:path';
import { BuildError } from '../errors/index.js';
import { parseDuration, parseSize, parseSpace, resolveSpace, type SpaceSpec } from './units.js';

/** The `gc` section of `<root>/config.json` as written (sizes as numbers of bytes or strings like "20GB"/"10%"). */
export interface GcPolicyConfig {
  /** run GC after every build (default true) */
  enabled?: boolean;
  /** keep kiln's state directory at most this big (default: 10% of the disk, at most 20GB) */
  maxUsedSpace?: number | string;
  /** delete cache while the disk has less free space than this (default 10%) */
  minFreeSpace?: number | string;
  /** never delete below this much (default 0) */
  reservedSpace?: number | string;
  /** only delete entries not used for this long (default 0: any age) */
  keepDuration?: number | string;
}

/** The `history` section of `<root>/config.json`. */
export interface HistoryConfig {
  /** builds kept in `kiln history` (default 50) */
  maxBuilds?: number;
  /** per-build log cap (default 1MB) */
  maxLogBytes?: number | string;
}

/** GC limits in bytes for one disk. */
export interface GcPolicy {
  enabled: boolean;
  maxUsedSpace: number;
  minFreeSpace: number;
  reservedSpace: number;
  keepDurationMs: number;
}

export interface HistoryPolicy {
  maxBuilds: number;
  maxLogBytes: number;
}

const GB = 1000 ** 3;
export const DEFAULT_MAX_BUILDS = 50;
export const DEFAULT_MAX_LOG_BYTES = 1_000_000;

/** Read `<root>/config.json` (missing → {}). A malformed file is an argument error naming it. */
export function readConfigFile(root: string): { gc?: GcPolicyConfig; history?: HistoryConfig } {
  const file = path.join(root, 'config.json');
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    return {};
  }
  try {
    return JSON.parse(text) as { gc?: GcPolicyConfig; history?: HistoryConfig };
  } catch (err) {
    throw new BuildError('ERR_KILN_ARGUMENT', `${file} is not valid JSON: ${(err as Error).message}`, { hint: 'fix or remove the file' });
  }
}

function space(v: number | string | undefined, fallback: SpaceSpec, what: string): SpaceSpec {
  if (v === undefined) return fallback;
  if (typeof v === 'number') return { bytes: v };
  return parseSpace(v, what);
}

/** The GC policy with defaults filled in for a disk of `diskBytes`. */
export function resolveGcPolicy(cfg: GcPolicyConfig | undefined, diskBytes: number): GcPolicy {
  const c = cfg ?? {};
  const maxDefault = Math.min(Math.floor(diskBytes * 0.1), 20 * GB);
  return {
    enabled: c.enabled !== false,
    maxUsedSpace: resolveSpace(space(c.maxUsedSpace, { bytes: maxDefault }, 'gc.maxUsedSpace'), diskBytes),
    minFreeSpace: resolveSpace(space(c.minFreeSpace, { percent: 10 }, 'gc.minFreeSpace'), diskBytes),
    reservedSpace: resolveSpace(space(c.reservedSpace, { bytes: 0 }, 'gc.reservedSpace'), diskBytes),
    keepDurationMs: c.keepDuration === undefined ? 0 : typeof c.keepDuration === 'number' ? c.keepDuration * 1000 : parseDuration(c.keepDuration, 'gc.keepDuration'),
  };
}

export function resolveHistoryPolicy(cfg: HistoryConfig | undefined): HistoryPolicy {
  const c = cfg ?? {};
  const max = c.maxBuilds ?? DEFAULT_MAX_BUILDS;
  if (!Number.isInteger(max) || max < 1) throw new BuildError('ERR_KILN_ARGUMENT', `history.maxBuilds must be a whole number ≥ 1 (got ${String(max)})`);
  return {
    maxBuilds: max,
    maxLogBytes: c.maxLogBytes === undefined ? DEFAULT_MAX_LOG_BYTES : typeof c.maxLogBytes === 'number' ? c.maxLogBytes : parseSize(c.maxLogBytes, 'history.maxLogBytes'),
  };
}

/** Size and free space of the file system holding `dir`. */
export async function diskStats(dir: string): Promise<{ total: number; free: number }> {
  const st = await fsp.statfs(dir);
  return { total: st.blocks * st.bsize, free: st.bavail * st.bsize };
}
