/**
 * Go's time.ParseDuration, to nanoseconds, with Go's error messages.
 * @internal
 */
import { InstructionProblem } from './problem.js';

const MAX = (1n << 63n) - 1n;
const UNITS: Record<string, bigint> = {
  ns: 1n,
  us: 1000n,
  '\u00b5s': 1000n,
  '\u03bcs': 1000n,
  ms: 1_000_000n,
  s: 1_000_000_000n,
  m: 60_000_000_000n,
  h: 3_600_000_000_000n,
};

function goQuote(s: string): string {
  return JSON.stringify(s);
}

function isDigit(c: string | undefined): boolean {
  return c !== undefined && c >= '0' && c <= '9';
}

function leadingInt(s: string): { x: bigint; rest: string } | undefined {
  let i = 0;
  let x = 0n;
  for (; i < s.length && isDigit(s[i]); i++) {
    x = x * 10n + BigInt(s.charCodeAt(i) - 48);
    if (x > 1n << 63n) return undefined;
  }
  return { x, rest: s.slice(i) };
}

function leadingFraction(s: string): { x: bigint; scale: number; rest: string } {
  let i = 0;
  let x = 0n;
  let scale = 1;
  let overflow = false;
  for (; i < s.length && isDigit(s[i]); i++) {
    if (overflow) continue;
    if (x > MAX / 10n) {
      overflow = true;
      continue;
    }
    const y = x * 10n + BigInt(s.charCodeAt(i) - 48);
    if (y > 1n << 63n) {
      overflow = true;
      continue;
    }
    x = y;
    scale *= 10;
  }
  return { x, scale, rest: s.slice(i) };
}

/**
 * Parse a Go duration string such as `1m30s` or `1.5h` into nanoseconds.
 * @example parseGoDuration('1.5s') // 1500000000
 */
export function parseGoDuration(orig: string): number {
  const invalid = (): never => {
    throw new InstructionProblem(`time: invalid duration ${goQuote(orig)}`);
  };
  let s = orig;
  let neg = false;
  if (s !== '' && (s[0] === '-' || s[0] === '+')) {
    neg = s[0] === '-';
    s = s.slice(1);
  }
  if (s === '0') return 0;
  if (s === '') invalid();
  let total = 0n;
  while (s !== '') {
    if (!(s[0] === '.' || isDigit(s[0]))) invalid();
    const before = s.length;
    const int = leadingInt(s) ?? invalid();
    s = int.rest;
    const pre = before !== s.length;
    let frac = { x: 0n, scale: 1 };
    let post = false;
    if (s[0] === '.') {
      s = s.slice(1);
      const pl = s.length;
      const f = leadingFraction(s);
      frac = f;
      s = f.rest;
      post = pl !== s.length;
    }
    if (!pre && !post) invalid();
    let i = 0;
    while (i < s.length && s[i] !== '.' && !isDigit(s[i])) i++;
    if (i === 0) throw new InstructionProblem(`time: missing unit in duration ${goQuote(orig)}`);
    const u = s.slice(0, i);
    s = s.slice(i);
    const unit = UNITS[u];
    if (unit === undefined) throw new InstructionProblem(`time: unknown unit ${goQuote(u)} in duration ${goQuote(orig)}`);
    if (int.x > (1n << 63n) / unit) invalid();
    let v = int.x * unit;
    if (frac.x > 0n) {
      v += BigInt(Math.trunc(Number(frac.x) * (Number(unit) / frac.scale)));
      if (v > 1n << 63n) invalid();
    }
    total += v;
    if (total > 1n << 63n) invalid();
  }
  if (neg) return -Number(total);
  if (total > MAX) invalid();
  return Number(total);
}
