import { lstatSync, readdirSync, readlinkSync } from 'node:fs';
import { compileComponentGlob, hasWildcards } from './glob.js';
import { cleanPath, compareNames, dirName } from './path-utils.js';

/**
 * fsutil's FollowLinks: resolve symlinks along the given paths (components may hold wildcards) into the
 * extra include patterns a walk needs so that the link targets are sent too. Absolute link targets are
 * relative to the context root. Returns null when a path resolves to the root (no include filter needed).
 * @internal
 */
export function followLinks(root: string, paths: readonly string[]): string[] | null {
  const resolved = new Set<string>();
  for (const p of paths) appendPath(root, resolved, p);
  return dedupePaths([...resolved].sort(compareNames));
}

function goJoin(a: string, b: string): string {
  if (a === '') return cleanPath(b);
  if (b === '') return cleanPath(a);
  return cleanPath(`${a}/${b}`);
}

function appendPath(root: string, resolved: Set<string>, input: string): void {
  let rest = goJoin('.', input);
  let current = '.';
  for (;;) {
    const slash = rest.indexOf('/');
    const head = slash < 0 ? rest : rest.slice(0, slash);
    current = goJoin(current, head);
    const targets = readSymlink(root, current, true);
    rest = slash < 0 ? '' : rest.slice(slash + 1);
    if ((rest === '' || targets) && resolved.has(current)) return;
    if (targets) {
      resolved.add(current);
      for (const t of targets) appendPath(root, resolved, goJoin(t, rest));
      return;
    }
    if (rest === '') {
      resolved.add(current);
      return;
    }
  }
}

function isMissing(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException).code;
  return code === 'ENOENT' || code === 'ENOTDIR';
}

function readSymlink(root: string, p: string, allowWildcard: boolean): string[] | null {
  const slash = p.lastIndexOf('/');
  const base = slash < 0 ? p : p.slice(slash + 1);
  if (allowWildcard && hasWildcards(base)) return readWildcard(root, p, base);
  if (p === '.' || p === '/') return null;
  let target: string;
  try {
    if (!lstatSync(`${root}/${p}`).isSymbolicLink()) return null;
    target = readlinkSync(`${root}/${p}`);
  } catch (err) {
    if (isMissing(err)) return null;
    throw err;
  }
  const link = cleanPath(target);
  if (link.startsWith('/')) return [link];
  return [goJoin('/', goJoin(dirName(p), link))];
}

function readWildcard(root: string, p: string, base: string): string[] | null {
  const dir = dirName(p);
  let names: string[];
  try {
    names = readdirSync(dir === '.' ? root : `${root}/${dir}`).sort(compareNames);
  } catch (err) {
    if (isMissing(err)) return null;
    throw err;
  }
  let match: (name: string) => boolean;
  try {
    match = compileComponentGlob(base);
  } catch {
    return null; // Go ignores the error of filepath.Match here: nothing matches
  }
  const out: string[] = [];
  for (const name of names) {
    if (!match(name)) continue;
    const res = readSymlink(root, goJoin(dir, name), false);
    if (res) out.push(...res);
  }
  return out.length > 0 ? out : null;
}

/** fsutil dedupePaths: drop paths below an earlier one; a '.' means "everything" (null). */
export function dedupePaths(input: readonly string[]): string[] | null {
  const out: string[] = [];
  let last = '';
  for (const s of input) {
    if (s === '.') return null;
    if (s.startsWith(`${last}/`)) continue;
    out.push(s);
    last = s;
  }
  return out;
}
