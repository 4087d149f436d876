import { cleanPath } from '../../context/index.js';
/**
 * Go path semantics the COPY rules depend on: `path.Clean` and `filepath.Match` (Unix flavour: `\` escapes).
 * @internal
 */

/** Go's `path.Clean`, from the context part (one implementation for both). */
export { cleanPath };

export function cleanAbs(p: string): string {
  return cleanPath('/' + p);
}

/** `cleanAbs` without the leading '/': '' for the root. */
export function cleanRel(p: string): string {
  return cleanAbs(p).slice(1);
}

/** A malformed pattern, as Go's `filepath.ErrBadPattern`. */
export class BadPatternError extends Error {
  constructor(pattern: string) {
    super(`syntax error in pattern: ${pattern}`);
    this.name = 'BadPatternError';
  }
}

/** True when `name` has an unescaped `*`, `?` or `[` (BuildKit's containsWildcards, Unix). */
export function containsWildcards(name: string): boolean {
  for (let i = 0; i < name.length; i++) {
    const ch = name[i];
    if (ch === '\\') i++;
    else if (ch === '*' || ch === '?' || ch === '[') return true;
  }
  return false;
}

/**
 * Split a source path at its first component with a wildcard (fsutil's splitWildcards): the literal directory
 * before it, and the pattern from it on ('' when there is no wildcard).
 */
export function splitWildcards(p: string): { dir: string; pattern: string } {
  const parts = cleanPath(p).split('/');
  const lit: string[] = [];
  const pat: string[] = [];
  let found = false;
  for (const part of parts) {
    if (!found && containsWildcards(part)) found = true;
    (found ? pat : lit).push(part === '' ? '/' : part);
  }
  return { dir: joinParts(lit), pattern: joinParts(pat) };
}

function joinParts(parts: string[]): string {
  const nonEmpty = parts.filter((x) => x !== '');
  if (nonEmpty.length === 0) return '';
  return cleanPath(nonEmpty.join('/'));
}

/** Compiled Go `filepath.Match` pattern. */
export interface GoMatcher {
  match(name: string): boolean;
  /** upper bound of how many '/'-separated components a matching name can have */
  maxDepth: number;
}

/** Compile a Go `filepath.Match` pattern; throws {@link BadPatternError} if it is malformed. */
export function compileGoMatch(pattern: string): GoMatcher {
  const pat = Array.from(pattern);
  goMatch(pat, []); // syntax check: Go reports ErrBadPattern for the whole pattern
  let depth = 1;
  for (const ch of pat) if (ch === '/') depth++;
  return { match: (name: string) => goMatch(pat, Array.from(name)), maxDepth: depth };
}

/** Go `filepath.Match(pattern, name)`. Throws {@link BadPatternError} on a malformed pattern. */
export function goFilepathMatch(pattern: string, name: string): boolean {
  return goMatch(Array.from(pattern), Array.from(name));
}

function goMatch(patternIn: string[], nameIn: string[]): boolean {
  let pattern = patternIn;
  let name = nameIn;
  const src = patternIn.join('');
  outer: while (pattern.length > 0) {
    const { star, chunk, rest } = scanChunk(pattern);
    pattern = rest;
    if (star && chunk.length === 0) return !name.includes('/');
    const first = matchChunk(chunk, name, src);
    if (first !== null && (first.length === 0 || pattern.length > 0)) {
      name = first;
      continue;
    }
    if (star) {
      for (let i = 0; i < name.length && name[i] !== '/'; i++) {
        const t = matchChunk(chunk, name.slice(i + 1), src);
        if (t !== null) {
          if (pattern.length === 0 && t.length > 0) continue;
          name = t;
          continue outer;
        }
      }
    }
    // no match: still validate the rest of the pattern, as Go does
    while (pattern.length > 0) {
      const next = scanChunk(pattern);
      pattern = next.rest;
      matchChunk(next.chunk, [], src);
    }
    return false;
  }
  return name.length === 0;
}

function scanChunk(pattern: string[]): { star: boolean; chunk: string[]; rest: string[] } {
  let star = false;
  let p = pattern;
  while (p.length > 0 && p[0] === '*') {
    p = p.slice(1);
    star = true;
  }
  let inRange = false;
  let i = 0;
  scan: for (; i < p.length; i++) {
    switch (p[i]) {
      case '\\':
        if (i + 1 < p.length) i++;
        break;
      case '[':
        inRange = true;
        break;
      case ']':
        inRange = false;
        break;
      case '*':
        if (!inRange) break scan;
        break;
    }
  }
  return { star, chunk: p.slice(0, i), rest: p.slice(i) };
}

/** Returns the unmatched rest of `s`, or null when the chunk does not match. */
function matchChunk(chunkIn: string[], sIn: string[], src: string): string[] | null {
  let chunk = chunkIn;
  let s = sIn;
  let failed = false;
  while (chunk.length > 0) {
    if (!failed && s.length === 0) failed = true;
    const c = chunk[0];
    if (c === '[') {
      let r = '';
      if (!failed) {
        r = s[0];
        s = s.slice(1);
      }
      chunk = chunk.slice(1);
      let negated = false;
      if (chunk.length > 0 && chunk[0] === '^') {
        negated = true;
        chunk = chunk.slice(1);
      }
      let matched = false;
      let nrange = 0;
      for (;;) {
        if (chunk.length > 0 && chunk[0] === ']' && nrange > 0) {
          chunk = chunk.slice(1);
          break;
        }
        const lo = getEsc(chunk, src);
        chunk = lo.rest;
        let hi = lo.ch;
        if (chunk[0] === '-') {
          const h = getEsc(chunk.slice(1), src);
          chunk = h.rest;
          hi = h.ch;
        }
        if (!failed && cp(lo.ch) <= cp(r) && cp(r) <= cp(hi)) matched = true;
        nrange++;
      }
      if (matched === negated) failed = true;
    } else if (c === '?') {
      if (!failed) {
        if (s[0] === '/') failed = true;
        s = s.slice(1);
      }
      chunk = chunk.slice(1);
    } else {
      if (c === '\\') {
        chunk = chunk.slice(1);
        if (chunk.length === 0) throw new BadPatternError(src);
      }
      if (!failed) {
        if (chunk[0] !== s[0]) failed = true;
        s = s.slice(1);
      }
      chunk = chunk.slice(1);
    }
  }
  return failed ? null : s;
}

function getEsc(chunk: string[], src: string): { ch: string; rest: string[] } {
  if (chunk.length === 0 || chunk[0] === '-' || chunk[0] === ']') throw new BadPatternError(src);
  let c = chunk;
  if (c[0] === '\\') {
    c = c.slice(1);
    if (c.length === 0) throw new BadPatternError(src);
  }
  const ch = c[0];
  c = c.slice(1);
  if (c.length === 0) throw new BadPatternError(src);
  return { ch, rest: c };
}

function cp(ch: string): number {
  return ch.codePointAt(0) ?? -1;
}
