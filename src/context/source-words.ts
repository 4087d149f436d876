/**
 * Go path semantics of COPY/ADD source words: `path.Clean` on absolute paths and fsutil's splitWildcards. Wildcards
 * themselves are Go `filepath.Match`, implemented once in glob.ts (also used by .dockerignore).
 * @internal
 */
import { compileComponentGlob, GlobSyntaxError, hasWildcards } from './glob.js';
import { cleanPath } from './path-utils.js';

export { cleanPath, hasWildcards as containsWildcards, GlobSyntaxError };

export function cleanAbs(p: string): string {
  return cleanPath('/' + p);
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
    if (!found && hasWildcards(part)) found = true;
    (found ? pat : lit).push(part === '' ? '/' : part);
  }
  return { dir: joinParts(lit), pattern: joinParts(pat) };
}

function joinParts(parts: string[]): string {
  const nonEmpty = parts.filter((x) => x !== '');
  if (nonEmpty.length === 0) return '';
  return cleanPath(nonEmpty.join('/'));
}

/** A compiled Go `filepath.Match` pattern over '/'-separated relative paths. */
export interface GoMatcher {
  match(name: string): boolean;
  /** upper bound of how many '/'-separated components a matching name can have */
  maxDepth: number;
}

/** Compile a Go `filepath.Match` pattern (`*` and `?` never match '/'); throws GlobSyntaxError if malformed. */
export function compileGoMatch(pattern: string): GoMatcher {
  const match = compileComponentGlob(pattern);
  let depth = 1;
  for (const ch of pattern) if (ch === '/') depth++;
  return { match, maxDepth: depth };
}
