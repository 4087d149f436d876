/**
 * The .dockerignore pattern dialect (moby/patternmatcher semantics), used for COPY --exclude and for the include
 * pattern of COPY --parents. Last matching pattern wins; a pattern matches a path or any of its ancestors.
 * @internal
 */
import { cleanPath, goFilepathMatch, BadPatternError } from './go-path.js';

type Kind = 'exact' | 'prefix' | 'suffix' | 'regexp';

interface Pattern {
  text: string;
  exclusion: boolean;
  kind: Kind;
  re?: RegExp;
}

/** Per-directory matching state handed down a walk (which patterns matched the parent). */
export type MatchInfo = readonly boolean[] | undefined;

/** A compiled pattern list. */
export class PatternMatcher {
  readonly patterns: readonly Pattern[];
  /** true when some pattern is a '!' exception */
  readonly hasExclusions: boolean;

  constructor(patterns: readonly string[]) {
    const out: Pattern[] = [];
    let exclusions = false;
    for (const raw of patterns) {
      let p = raw.trim();
      if (p === '') continue;
      p = cleanPath(p);
      let exclusion = false;
      if (p[0] === '!') {
        if (p.length === 1) throw new BadPatternError('!');
        exclusion = true;
        exclusions = true;
        p = p.slice(1);
      }
      goFilepathMatch(p, '.'); // syntax check, as upstream
      out.push({ text: p, exclusion, ...compile(p) });
    }
    this.patterns = out;
    this.hasExclusions = exclusions;
  }

  /** Whether `file` (a '/'-separated relative path) is matched, considering all its ancestors. */
  matchesOrParentMatches(file: string): boolean {
    return this.matchesUsingParentResults(file, undefined).matched;
  }

  /**
   * Match `file` given the results for its parent directory (`undefined` at the top of a walk, which checks every
   * ancestor explicitly). Returns the verdict and the state to pass to the children.
   */
  matchesUsingParentResults(file: string, parent: MatchInfo): { matched: boolean; info: boolean[] } {
    const info = new Array<boolean>(this.patterns.length).fill(false);
    let matched = false;
    for (let i = 0; i < this.patterns.length; i++) {
      const pat = this.patterns[i];
      let match = parent !== undefined && parent.length > 0 ? parent[i] : false;
      if (!match) {
        if (pat.exclusion !== matched) continue;
        match = matchOne(pat, file);
        if (!match && (parent === undefined || parent.length === 0)) match = matchAncestors(pat, file);
      }
      info[i] = match;
      if (match) matched = !pat.exclusion;
    }
    return { matched, info };
  }
}

function matchAncestors(pat: Pattern, file: string): boolean {
  const slash = file.lastIndexOf('/');
  if (slash <= 0) return false;
  const dirs = file.slice(0, slash).split('/');
  for (let i = 1; i <= dirs.length; i++) {
    if (matchOne(pat, dirs.slice(0, i).join('/'))) return true;
  }
  return false;
}

function matchOne(pat: Pattern, path: string): boolean {
  switch (pat.kind) {
    case 'exact':
      return path === pat.text;
    case 'prefix':
      return path.startsWith(pat.text.slice(0, -2));
    case 'suffix': {
      const suffix = pat.text.slice(2);
      if (path.endsWith(suffix)) return true;
      return suffix[0] === '/' && path === suffix.slice(1);
    }
    case 'regexp':
      return pat.re!.test(path);
  }
}

const REGEX_ESCAPED = new Set(['.', '+', '(', ')', '|', '{', '}', '$']);
/** one character other than '/', a surrogate pair counting as one (Go matches runes) */
const ONE_NON_SLASH = '(?:[\\uD800-\\uDBFF][\\uDC00-\\uDFFF]|[^/])';

function compile(pattern: string): { kind: Kind; re?: RegExp } {
  const chars = Array.from(pattern);
  let re = '^';
  let kind: Kind = 'exact';
  for (let i = 0, step = 0; i < chars.length; i++, step++) {
    const ch = chars[i];
    if (ch === '*') {
      if (chars[i + 1] === '*') {
        i++;
        if (chars[i + 1] === '/') i++;
        if (i + 1 >= chars.length) {
          if (kind === 'exact') kind = 'prefix';
          else {
            re += '[^\\n]*';
            kind = 'regexp';
          }
        } else {
          re += '(?:[^\\n]*/)?';
          kind = 'regexp';
        }
        if (step === 0) kind = 'suffix';
      } else {
        re += '[^/]*';
        kind = 'regexp';
      }
    } else if (ch === '?') {
      re += ONE_NON_SLASH;
      kind = 'regexp';
    } else if (REGEX_ESCAPED.has(ch)) {
      re += '\\' + ch;
    } else if (ch === '\\') {
      if (i + 1 < chars.length) {
        re += '\\' + chars[++i];
        kind = 'regexp';
      } else {
        re += '\\\\';
      }
    } else if (ch === '[' || ch === ']') {
      re += ch;
      kind = 'regexp';
    } else {
      re += ch;
    }
  }
  if (kind !== 'regexp') return { kind };
  try {
    return { kind, re: new RegExp(re + '$') };
  } catch {
    throw new BadPatternError(pattern);
  }
}
