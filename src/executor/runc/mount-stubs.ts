import path from 'node:path';
import { lstatInRoot, removeIfEmptyInRoot, resolveInRoot, setDirTimesInRoot } from '../../fsroot/index.js';

/**
 * Find the in-container paths runc will have to create in `rootfs` to mount over `destinations`: every path
 * component that does not exist yet, from the first missing one down to the destination. Resolved paths are
 * returned (symlinks in the existing part followed inside the rootfs), without duplicates, deepest last.
 */
export async function planMountStubs(opts: { rootfs: string; destinations: string[] }): Promise<string[]> {
  const stubs = new Set<string>();
  for (const dest of opts.destinations) {
    const resolved = await resolveInRoot(opts.rootfs, dest);
    const parts = resolved.split('/').filter(Boolean);
    for (let i = 1; i <= parts.length; i++) {
      const p = '/' + parts.slice(0, i).join('/');
      if (stubs.has(p) || lstatInRoot(opts.rootfs, p) === undefined) {
        for (let j = i; j <= parts.length; j++) stubs.add('/' + parts.slice(0, j).join('/'));
        break;
      }
    }
  }
  return [...stubs];
}

/**
 * Remove the stubs again, deepest first, but only those that are still empty (an empty directory or an empty
 * regular file): anything the process put there is kept. Missing stubs are ignored. Every path is reached with no
 * symlink followed (the container may have swapped a parent for a link to anywhere): what cannot be reached that way
 * is left alone. Returns the removed paths.
 */
export async function removeMountStubs(opts: { rootfs: string; stubs: string[]; parentTimes?: Array<[string, number, number]> }): Promise<string[]> {
  const removed: string[] = [];
  const deepestFirst = [...opts.stubs].sort((a, b) => depth(b) - depth(a) || b.localeCompare(a));
  for (const stub of deepestFirst) {
    if (removeIfEmptyInRoot(opts.rootfs, stub)) removed.push(stub);
  }
  // creating and removing a stub touched its parent: give existing parents their times back, so a step that
  // changed nothing there leaves the parent unchanged (and the overlay copy-up can be dropped from the layer)
  for (const [dir, atimeMs, mtimeMs] of opts.parentTimes ?? []) {
    setDirTimesInRoot({ root: opts.rootfs, inRoot: dir, atimeMs, mtimeMs });
  }
  return removed;
}

/** Times of the existing parents of the stubs, taken before the run. */
export async function parentTimes(opts: { rootfs: string; stubs: string[] }): Promise<Array<[string, number, number]>> {
  const stubs = new Set(opts.stubs);
  const out = new Map<string, [string, number, number]>();
  for (const s of opts.stubs) {
    const parent = path.posix.dirname(s);
    if (stubs.has(parent) || out.has(parent)) continue;
    const st = lstatInRoot(opts.rootfs, parent);
    // parent missing: it is a stub itself
    if (st?.isDirectory()) out.set(parent, [parent, st.atimeMs, st.mtimeMs]);
  }
  return [...out.values()];
}

function depth(p: string): number {
  return p.split('/').length;
}
