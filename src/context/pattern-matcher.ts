import { BuildError } from '../errors/index.js';
import { GlobSyntaxError, parseGlob, regexClass, regexLiteral, type GlobToken } from './glob.js';
import { cleanPath, dirName, trimSpace } from './path-utils.js';
import { compileLinearGlob, inClass, literal, notNewline, notSlash, type GlobPiece } from './linear-glob.js';

/**
 * .dockerignore matching with Docker's patternmatcher semantics (own implementation).
 *
 * Deliberate differences from upstream, all on patterns that upstream mishandles:
 * - `\x` always means a literal `x` (upstream feeds it to Go's regexp, so `\d` would match a digit);
 * - a `^` outside a class is literal (upstream leaves it as a regexp anchor in some patterns);
 * - character classes are parsed as `filepath.Match` defines them, so `[*]` matches `*`;
 * - a reversed range such as `[z-a]` is rejected when the matcher is built, not at the first match.
 */

/** How one pattern is matched; mirrors upstream's fast-path classification. */
export type PatternKind = 'exact' | 'prefix' | 'suffix' | 'regexp';

/** A prepared pattern. @internal */
export interface CompiledPattern {
  /** Cleaned pattern text without the leading '!'. */
  readonly text: string;
  readonly exclusion: boolean;
  readonly kind: PatternKind;
  /** Regexp source for `regexp` patterns, written as upstream writes it (for '/'-separated paths). */
  readonly regexpSource: string | null;
  /** Number of path components (used only by the deprecated `Matches` semantics). */
  readonly dirCount: number;
  test(path: string): boolean;
}

/** A prepared pattern list, as used by the walker. @internal */
export interface CompiledMatcher {
  readonly patterns: readonly CompiledPattern[];
  readonly hasExclusions: boolean;
  /** For include use: no ordinary pattern has glob characters before its trailing glob. */
  readonly onlyPrefixIncludes: boolean;
  /** For exclude use: no exception pattern has glob characters before its trailing glob. */
  readonly onlyPrefixExceptions: boolean;
  /** `withoutTrailingGlob(p) + '/'` of every ordinary pattern. */
  readonly includePrefixes: readonly string[];
  /** `withoutTrailingGlob(p) + '/'` of every exception pattern. */
  readonly exceptionPrefixes: readonly string[];
}

/** Result of evaluating one path incrementally: the verdict and per-pattern results to pass to children. */
export interface MatchState {
  matched: boolean;
  bits: Uint8Array;
}

/** A compiled .dockerignore (or include) pattern list. */
export interface PatternMatcher {
  /** true when the path (relative, '/'-separated) is excluded, considering parents (MatchesOrParentMatches) */
  matches(relPath: string): boolean;
  /** true if some exception pattern could match below this (excluded) dir, so the walk must still descend */
  mayMatchBelow(relDir: string): boolean;
  /** The normalised patterns (trimmed, cleaned, exceptions keep their leading '!'). */
  readonly patterns: readonly string[];
}

const compiledByMatcher = new WeakMap<PatternMatcher, CompiledMatcher>();

function patternError(pattern: string, reason: string, cause?: unknown): BuildError {
  return new BuildError('ERR_KILN_IGNORE_PATTERN', `invalid pattern ${JSON.stringify(pattern)}: ${reason}`, {
    cause,
    details: { pattern },
  });
}

/** Prepare one raw pattern; returns null for a pattern that is empty after trimming. @internal */
export function compilePattern(raw: string): CompiledPattern | null {
  const trimmed = trimSpace(raw);
  if (trimmed === '') return null;
  let text = cleanPath(trimmed);
  let exclusion = false;
  if (text.startsWith('!')) {
    if (text.length === 1) throw patternError(raw, 'a lone "!" is not a pattern');
    exclusion = true;
    text = text.slice(1);
  }
  let tokens: GlobToken[];
  try {
    tokens = parseGlob(text);
  } catch (err) {
    if (err instanceof GlobSyntaxError) throw patternError(raw, err.message.replace(/^.*?: /, ''), err);
    throw err;
  }
  const { kind, source, pieces } = classify(tokens);
  // `regexp` patterns are matched by a linear-time NFA with the regexp's meaning, never by the backtracking RegExp
  // engine (`*a*a*a*a*a*b` against a long name would take minutes)
  const re = kind === 'regexp' ? compileLinearGlob(pieces) : null;
  return {
    text,
    exclusion,
    kind,
    regexpSource: kind === 'regexp' ? source : null,
    dirCount: text.split('/').length,
    test: makeTest(kind, text, re),
  };
}

function isSlash(tok: GlobToken | undefined): boolean {
  return tok !== undefined && tok.t === 'lit' && tok.c === '/' && !tok.escaped;
}

/** Upstream's compile step: choose exact/prefix/suffix/regexp and build the regexp. */
function classify(tokens: GlobToken[]): { kind: PatternKind; source: string; pieces: GlobPiece[] } {
  let kind: PatternKind = 'exact';
  let src = '^';
  const pieces: GlobPiece[] = [];
  for (let i = 0; i < tokens.length; i++) {
    const start = i;
    const tok = tokens[i];
    if (tok.t === 'star' && tokens[i + 1]?.t === 'star') {
      i++;
      if (isSlash(tokens[i + 1])) i++;
      if (i + 1 >= tokens.length) {
        if (kind === 'exact') kind = 'prefix';
        else {
          src += '.*';
          pieces.push({ t: 'many', test: notNewline });
          kind = 'regexp';
        }
      } else {
        src += '(.*/)?';
        pieces.push({ t: 'dirs' });
        kind = 'regexp';
      }
      if (start === 0) kind = 'suffix';
    } else if (tok.t === 'star') {
      src += '[^/]*';
      pieces.push({ t: 'many', test: notSlash });
      kind = 'regexp';
    } else if (tok.t === 'any') {
      src += '[^/]';
      pieces.push({ t: 'one', test: notSlash });
      kind = 'regexp';
    } else if (tok.t === 'lit') {
      src += regexLiteral(tok.c);
      pieces.push({ t: 'one', test: literal(tok.c) });
      if (tok.escaped) kind = 'regexp';
    } else if (tok.t === 'rbracket') {
      src += '\\]';
      pieces.push({ t: 'one', test: literal(']') });
      kind = 'regexp';
    } else {
      src += regexClass(tok);
      pieces.push({ t: 'one', test: inClass(tok.ranges, tok.negated) });
      kind = 'regexp';
    }
  }
  return { kind, source: `${src}$`, pieces };
}

function makeTest(kind: PatternKind, text: string, re: ((path: string) => boolean) | null): (path: string) => boolean {
  switch (kind) {
    case 'exact':
      return (path) => path === text;
    case 'prefix': {
      const prefix = text.slice(0, -2);
      return (path) => path.startsWith(prefix);
    }
    case 'suffix': {
      const suffix = text.slice(2);
      const bare = suffix.startsWith('/') ? suffix.slice(1) : null;
      return (path) => path.endsWith(suffix) || path === bare;
    }
    default:
      return re!;
  }
}

const PATTERN_CHARS = /[*[\]?^\\]/;

function withoutTrailingGlob(text: string): string {
  let s = text;
  if (s.endsWith('/**')) s = s.slice(0, -3);
  if (s.endsWith('/*')) s = s.slice(0, -2);
  return s;
}

/** Compile a pattern list (upstream `patternmatcher.New`). @internal */
export function compileMatcher(patterns: readonly string[]): CompiledMatcher {
  const compiled: CompiledPattern[] = [];
  for (const raw of patterns) {
    const p = compilePattern(raw);
    if (p) compiled.push(p);
  }
  const includes = compiled.filter((p) => !p.exclusion);
  const exceptions = compiled.filter((p) => p.exclusion);
  return {
    patterns: compiled,
    hasExclusions: exceptions.length > 0,
    onlyPrefixIncludes: includes.every((p) => !PATTERN_CHARS.test(withoutTrailingGlob(p.text))),
    onlyPrefixExceptions: exceptions.every((p) => !PATTERN_CHARS.test(withoutTrailingGlob(p.text))),
    includePrefixes: includes.map((p) => `${withoutTrailingGlob(p.text)}/`),
    exceptionPrefixes: exceptions.map((p) => `${withoutTrailingGlob(p.text)}/`),
  };
}

/** Ancestors checked for a path, as upstream computes them (from `filepath.Dir`). */
function ancestorsOf(path: string): string[] {
  const parent = dirName(path);
  if (parent === '.') return [];
  const parts = parent.split('/');
  const out: string[] = [];
  let acc = '';
  for (let i = 0; i < parts.length; i++) {
    acc = i === 0 ? parts[0] : `${acc}/${parts[i]}`;
    out.push(acc);
  }
  return out;
}

/** Upstream `MatchesOrParentMatches` on an uncleaned path. @internal */
export function matchesOrParentMatches(m: CompiledMatcher, path: string): boolean {
  let matched = false;
  let ancestors: string[] | null = null;
  for (const p of m.patterns) {
    if (p.exclusion !== matched) continue;
    let hit = p.test(path);
    if (!hit) {
      ancestors ??= ancestorsOf(path);
      hit = ancestors.some((a) => p.test(a));
    }
    if (hit) matched = !p.exclusion;
  }
  return matched;
}

/**
 * Upstream `MatchesUsingParentResults`: evaluate `path` given the per-pattern results of its parent
 * directory (`null` for no information, which checks every ancestor). @internal
 */
export function matchWithParent(m: CompiledMatcher, path: string, parent: Uint8Array | null): MatchState {
  const bits = new Uint8Array(m.patterns.length);
  let matched = false;
  let ancestors: string[] | null = null;
  for (let i = 0; i < m.patterns.length; i++) {
    const p = m.patterns[i];
    let hit = parent !== null && parent[i] === 1;
    if (!hit) {
      if (p.exclusion !== matched) continue;
      hit = p.test(path);
      if (!hit && parent === null) {
        ancestors ??= ancestorsOf(path);
        hit = ancestors.some((a) => p.test(a));
      }
    }
    bits[i] = hit ? 1 : 0;
    if (hit) matched = !p.exclusion;
  }
  return { matched, bits };
}

/** True if an exception pattern could match below `dir`, as fsutil decides whether to descend. @internal */
export function exceptionMayMatchBelow(m: CompiledMatcher, dir: string): boolean {
  if (!m.hasExclusions) return false;
  if (!m.onlyPrefixExceptions || dir === '.' || dir === '') return true;
  const dirSlash = `${dir}/`;
  return m.exceptionPrefixes.some((p) => p.startsWith(dirSlash));
}

/** True if an ordinary include pattern could match below `dir` (only meaningful when onlyPrefixIncludes). @internal */
export function includeMayMatchBelow(m: CompiledMatcher, dir: string): boolean {
  const dirSlash = `${dir}/`;
  return m.includePrefixes.some((p) => p.startsWith(dirSlash));
}

/**
 * Build a matcher from .dockerignore patterns. Patterns are trimmed and cleaned; empty ones are dropped;
 * a `!` prefix makes an exception; the last matching pattern wins; a pattern also matches everything below
 * the paths it matches. Throws BuildError `ERR_KILN_IGNORE_PATTERN` for an invalid pattern.
 *
 * @example
 * const m = createPatternMatcher(['docs', '!docs/README.md']);
 * m.matches('docs/a.md');      // true (ignored)
 * m.matches('docs/README.md'); // false
 */
export function createPatternMatcher(patterns: string[]): PatternMatcher {
  const compiled = compileMatcher(patterns);
  const matcher: PatternMatcher = {
    patterns: Object.freeze(compiled.patterns.map((p) => (p.exclusion ? `!${p.text}` : p.text))),
    matches(relPath: string): boolean {
      const path = cleanPath(relPath);
      if (path === '.') return false;
      return matchesOrParentMatches(compiled, path);
    },
    mayMatchBelow(relDir: string): boolean {
      return exceptionMayMatchBelow(compiled, cleanPath(relDir));
    },
  };
  compiledByMatcher.set(matcher, compiled);
  return matcher;
}

/** The compiled form of a matcher (compiles `patterns` for a foreign implementation). @internal */
export function compiledOf(m: PatternMatcher): CompiledMatcher {
  return compiledByMatcher.get(m) ?? compileMatcher(m.patterns);
}

/**
 * Docker's deprecated `Matches` semantics: the path is cleaned, the context root never matches, and only the
 * one ancestor with as many components as the pattern is checked. Kept for conformance and comparison; use
 * {@link createPatternMatcher} for real work. @internal
 *
 * @example
 * matchesDeprecated(['**\/dir'], 'dir/file'); // false (MatchesOrParentMatches says true)
 */
export function matchesDeprecated(patterns: string[], relPath: string): boolean {
  const m = compileMatcher(patterns);
  const path = cleanPath(relPath);
  if (path === '.') return false;
  const parent = dirName(path);
  const parentDirs = parent.split('/');
  let matched = false;
  for (const p of m.patterns) {
    if (p.exclusion !== matched) continue;
    let hit = p.test(path);
    if (!hit && parent !== '.' && p.dirCount <= parentDirs.length) {
      hit = p.test(parentDirs.slice(0, p.dirCount).join('/'));
    }
    if (hit) matched = !p.exclusion;
  }
  return matched;
}

/** How a single pattern is prepared (kind and regexp), for diagnostics. @internal */
export function describePattern(pattern: string): { exclusion: boolean; text: string; kind: PatternKind; regexp: string | null } | null {
  const p = compilePattern(pattern);
  return p && { exclusion: p.exclusion, text: p.text, kind: p.kind, regexp: p.regexpSource };
}
