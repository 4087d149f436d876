/**
 * Go `filepath.Match` syntax: parsing (with Go's syntax errors) and single-component matching.
 * Used by the .dockerignore matcher (validation and compilation) and by COPY source wildcards.
 * @internal
 */

import { compileLinearGlob, inClass, literal, notSlash, type GlobPiece } from './linear-glob.js';

/** One element of a parsed glob. `rbracket` is a literal `]` outside a class (upstream treats it specially). */
export type GlobToken =
  | { t: 'lit'; c: string; escaped: boolean }
  | { t: 'rbracket' }
  | { t: 'star' }
  | { t: 'any' }
  | { t: 'class'; negated: boolean; ranges: Array<[string, string]> };

/** Thrown by {@link parseGlob} for a pattern Go's `filepath.Match` rejects (`ErrBadPattern`). */
export class GlobSyntaxError extends Error {
  constructor(readonly pattern: string, reason: string) {
    super(`syntax error in pattern ${JSON.stringify(pattern)}: ${reason}`);
    this.name = 'GlobSyntaxError';
  }
}

/** Parse a glob, validating it exactly as far as Go's `filepath.Match` does (plus reversed ranges). */
export function parseGlob(pattern: string): GlobToken[] {
  const cps = Array.from(pattern);
  const out: GlobToken[] = [];
  let i = 0;
  while (i < cps.length) {
    const c = cps[i];
    if (c === '\\') {
      if (i + 1 >= cps.length) throw new GlobSyntaxError(pattern, 'trailing backslash');
      out.push({ t: 'lit', c: cps[i + 1], escaped: true });
      i += 2;
    } else if (c === '[') {
      i = parseClass(pattern, cps, i + 1, out);
    } else if (c === ']') {
      out.push({ t: 'rbracket' });
      i++;
    } else {
      out.push(c === '*' ? { t: 'star' } : c === '?' ? { t: 'any' } : { t: 'lit', c, escaped: false });
      i++;
    }
  }
  return out;
}

function parseClass(pattern: string, cps: string[], start: number, out: GlobToken[]): number {
  let i = start;
  let negated = false;
  if (cps[i] === '^') {
    negated = true;
    i++;
  }
  const ranges: Array<[string, string]> = [];
  for (;;) {
    if (cps[i] === ']' && ranges.length > 0) {
      out.push({ t: 'class', negated, ranges });
      return i + 1;
    }
    const [lo, afterLo] = classChar(pattern, cps, i);
    let hi = lo;
    i = afterLo;
    if (cps[i] === '-') {
      [hi, i] = classChar(pattern, cps, i + 1);
      if (lo.codePointAt(0)! > hi.codePointAt(0)!) throw new GlobSyntaxError(pattern, `invalid range ${lo}-${hi}`);
    }
    ranges.push([lo, hi]);
  }
}

/** Go's getEsc: one (possibly escaped) class character, which may not be '-' or ']' and must not end the pattern. */
function classChar(pattern: string, cps: string[], start: number): [string, number] {
  let i = start;
  if (i >= cps.length || cps[i] === '-' || cps[i] === ']') throw new GlobSyntaxError(pattern, 'bad character class');
  if (cps[i] === '\\') {
    i++;
    if (i >= cps.length) throw new GlobSyntaxError(pattern, 'unterminated character class');
  }
  const c = cps[i];
  i++;
  if (i >= cps.length) throw new GlobSyntaxError(pattern, 'unterminated character class');
  return [c, i];
}

const OUTSIDE_SPECIAL = new Set(Array.from('^$\\.*+?()[]{}|'));
const INSIDE_SPECIAL = new Set(Array.from('\\]-[^'));

/** Regexp source for one literal character (outside a class). */
export function regexLiteral(c: string): string {
  return OUTSIDE_SPECIAL.has(c) ? `\\${c}` : c;
}

/** Regexp source for a parsed character class. */
export function regexClass(tok: Extract<GlobToken, { t: 'class' }>): string {
  const esc = (c: string): string => (INSIDE_SPECIAL.has(c) ? `\\${c}` : c);
  const body = tok.ranges.map(([lo, hi]) => (lo === hi ? esc(lo) : `${esc(lo)}-${esc(hi)}`)).join('');
  return `[${tok.negated ? '^' : ''}${body}]`;
}

/** True when a path component contains glob characters (Go/fsutil `containsWildcards`). */
export function hasWildcards(name: string): boolean {
  for (let i = 0; i < name.length; i++) {
    const ch = name[i];
    if (ch === '\\') i++;
    else if (ch === '*' || ch === '?' || ch === '[') return true;
  }
  return false;
}

/**
 * Compile a single-component glob (Go `filepath.Match` rules: `*` and `?` never match '/').
 * Throws {@link GlobSyntaxError} on a malformed pattern.
 */
export function compileComponentGlob(pattern: string): (name: string) => boolean {
  // matched in linear time (see linear-glob.ts), never by the backtracking RegExp engine
  const pieces: GlobPiece[] = parseGlob(pattern).map((tok) => {
    if (tok.t === 'lit') return { t: 'one', test: literal(tok.c) };
    if (tok.t === 'rbracket') return { t: 'one', test: literal(']') };
    if (tok.t === 'star') return { t: 'many', test: notSlash };
    if (tok.t === 'any') return { t: 'one', test: notSlash };
    return { t: 'one', test: inClass(tok.ranges, tok.negated) };
  });
  return compileLinearGlob(pieces);
}
