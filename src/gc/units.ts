import { BuildError } from '../errors/index.js';

const SIZE_UNITS: Record<string, number> = {
  '': 1,
  b: 1,
  k: 1000,
  kb: 1000,
  m: 1000 ** 2,
  mb: 1000 ** 2,
  g: 1000 ** 3,
  gb: 1000 ** 3,
  t: 1000 ** 4,
  tb: 1000 ** 4,
  kib: 1024,
  mib: 1024 ** 2,
  gib: 1024 ** 3,
  tib: 1024 ** 4,
};

/**
 * A size as people write it: `50MB`, `1.5GB`, `512k`, `2GiB`, `1048576`. kB/MB/GB/TB are powers of 1000,
 * KiB/MiB/GiB/TiB powers of 1024.
 *
 * @example
 * parseSize('50MB') // 50_000_000
 */
export function parseSize(text: string, what = 'size'): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*$/i.exec(text);
  const unit = m ? SIZE_UNITS[m[2]!.toLowerCase()] : undefined;
  if (!m || unit === undefined) {
    throw new BuildError('ERR_KILN_ARGUMENT', `${what}: cannot read "${text}" as a size`, { hint: 'write it like 500MB, 20GB or 2GiB' });
  }
  return Math.floor(Number(m[1]) * unit);
}

/** A size or a percentage of the disk: `10GB` or `10%`. */
export type SpaceSpec = { bytes: number } | { percent: number };

/** `10%` → {percent: 10}; anything else through {@link parseSize}. */
export function parseSpace(text: string, what = 'size'): SpaceSpec {
  const m = /^\s*(\d+(?:\.\d+)?)\s*%\s*$/.exec(text);
  if (m) {
    const percent = Number(m[1]);
    if (percent > 100) throw new BuildError('ERR_KILN_ARGUMENT', `${what}: ${text} is more than the whole disk`);
    return { percent };
  }
  return { bytes: parseSize(text, what) };
}

/** Bytes a space spec stands for on a disk of `diskBytes`. */
export function resolveSpace(spec: SpaceSpec, diskBytes: number): number {
  return 'bytes' in spec ? spec.bytes : Math.floor((diskBytes * spec.percent) / 100);
}

const DURATION_UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 7 * 86_400_000 };

/**
 * A duration like Go's (`24h`, `1h30m`, `90s`, `500ms`) plus days and weeks (`7d`, `2w`); a bare number is seconds.
 *
 * @example
 * parseDuration('1h30m') // 5_400_000
 */
export function parseDuration(text: string, what = 'duration'): number {
  const t = text.trim();
  if (/^\d+(?:\.\d+)?$/.test(t)) return Math.floor(Number(t) * 1000);
  const re = /(\d+(?:\.\d+)?)(ms|s|m|h|d|w)/gy;
  let total = 0;
  let pos = 0;
  let m: RegExpExecArray | null;
  while ((m = re.exec(t)) !== null) {
    total += Number(m[1]) * DURATION_UNITS[m[2]!]!;
    pos = re.lastIndex;
  }
  if (pos === 0 || pos !== t.length) {
    throw new BuildError('ERR_KILN_ARGUMENT', `${what}: cannot read "${text}" as a duration`, { hint: 'write it like 24h, 90m, 7d or 1h30m' });
  }
  return Math.floor(total);
}

/** Bytes for people, powers of 1000 (as `docker buildx du` prints them). */
export function formatBytes(n: number): string {
  const u = ['B', 'kB', 'MB', 'GB', 'TB'];
  let i = 0;
  let v = n;
  while (Math.abs(v) >= 1000 && i < u.length - 1) {
    v /= 1000;
    i++;
  }
  return i === 0 ? `${v}B` : `${v.toFixed(v < 10 ? 2 : 1)}${u[i]}`;
}

/** `3 minutes ago` */
export function formatAgo(at: number, now = Date.now()): string {
  const s = Math.max(0, Math.round((now - at) / 1000));
  if (s < 60) return s <= 1 ? 'just now' : `${s} seconds ago`;
  const m = Math.round(s / 60);
  if (m < 60) return m === 1 ? 'a minute ago' : `${m} minutes ago`;
  const h = Math.round(m / 60);
  if (h < 48) return h === 1 ? 'an hour ago' : `${h} hours ago`;
  return `${Math.round(h / 24)} days ago`;
}
