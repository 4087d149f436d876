import fs from 'node:fs';
import path from 'node:path';

/** One file system object found under the root. `rel` uses '/' and has no leading or trailing slash. */
export interface WalkEntry {
  rel: string;
  abs: string;
  st: fs.Stats;
}

/** Compare names by UTF-8 bytes (what Go and GNU tar sort by), fast for the usual BMP names. */
export function compareNames(a: string, b: string): number {
  if (a === b) return 0;
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a.charCodeAt(i);
    const y = b.charCodeAt(i);
    if (x === y) continue;
    if (x >= 0xd800 || y >= 0xd800) return Buffer.compare(Buffer.from(a.slice(i)), Buffer.from(b.slice(i)));
    return x - y;
  }
  return a.length - b.length;
}

/**
 * Walk `root` depth-first, parents before children, the root itself excluded. Each folder's entries are sorted by
 * `sortKey` (default: the name), so a caller that renames entries in its output (whiteouts) keeps siblings sorted.
 * Synchronous on purpose: lstat/readdir in a tight loop beats the async API several times for many small files.
 */
export function walkTree(
  root: string,
  opts: { signal?: AbortSignal; sortKey?: (name: string, st: fs.Stats) => string } = {},
): WalkEntry[] {
  const out: WalkEntry[] = [];
  const visit = (absDir: string, relDir: string): void => {
    opts.signal?.throwIfAborted();
    const items = fs.readdirSync(absDir).map((name) => {
      const abs = path.join(absDir, name);
      const st = fs.lstatSync(abs);
      return { name, abs, st, key: opts.sortKey ? opts.sortKey(name, st) : name };
    });
    items.sort((a, b) => compareNames(a.key, b.key));
    for (const { name, abs, st } of items) {
      const rel = relDir === '' ? name : `${relDir}/${name}`;
      out.push({ rel, abs, st });
      if (st.isDirectory()) visit(abs, rel);
    }
  };
  visit(path.resolve(root), '');
  return out;
}
