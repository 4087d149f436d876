import { lstat, readdir, rmdir, unlink, utimes } from 'node:fs/promises';
import path from 'node:path';
import { isMissing, resolveInRoot } from './rootfs-path.js';

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
      if (stubs.has(p) || !(await exists(path.join(opts.rootfs, p)))) {
        for (let j = i; j <= parts.length; j++) stubs.add('/' + parts.slice(0, j).join('/'));
        break;
      }
    }
  }
  return [...stubs];
}

/**
 * Remove the stubs again, deepest first, but only those that are still empty (an empty directory or an empty
 * regular file): anything the process put there is kept. Missing stubs are ignored. Returns the removed paths.
 */
export async function removeMountStubs(opts: { rootfs: string; stubs: string[]; parentTimes?: Array<[string, number, number]> }): Promise<string[]> {
  const removed: string[] = [];
  const deepestFirst = [...opts.stubs].sort((a, b) => depth(b) - depth(a) || b.localeCompare(a));
  for (const stub of deepestFirst) {
    if (await removeIfEmpty(path.join(opts.rootfs, stub))) removed.push(stub);
  }
  // creating and removing a stub touched its parent: give existing parents their times back, so a step that
  // changed nothing there leaves the parent unchanged (and the overlay copy-up can be dropped from the layer)
  for (const [dir, atimeMs, mtimeMs] of opts.parentTimes ?? []) {
    await utimes(path.join(opts.rootfs, dir), atimeMs / 1000, mtimeMs / 1000).catch(() => undefined);
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
    try {
      const st = await lstat(path.join(opts.rootfs, parent));
      out.set(parent, [parent, st.atimeMs, st.mtimeMs]);
    } catch {
      /* parent missing: it is a stub itself */
    }
  }
  return [...out.values()];
}

async function removeIfEmpty(p: string): Promise<boolean> {
  try {
    const st = await lstat(p);
    if (st.isDirectory()) {
      if ((await readdir(p)).length > 0) return false;
      await rmdir(p);
      return true;
    }
    if (st.isFile() && st.size === 0) {
      await unlink(p);
      return true;
    }
    return false;
  } catch (err) {
    if (isMissing(err) || (err as NodeJS.ErrnoException).code === 'ENOTEMPTY') return false;
    throw err;
  }
}

async function exists(p: string): Promise<boolean> {
  try {
    await lstat(p);
    return true;
  } catch (err) {
    if (isMissing(err)) return false;
    throw err;
  }
}

function depth(p: string): number {
  return p.split('/').length;
}
