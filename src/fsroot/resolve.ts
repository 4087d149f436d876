import { lstat, readlink } from 'node:fs/promises';
import path from 'node:path';
import { isWalkStop } from './walk.js';

const MAX_SYMLINKS = 255;

/**
 * Resolve an in-container path against `root` the way the container would see it (runc's securejoin): symlinks are
 * followed, but an absolute target restarts at `root` and `..` stops at it, so the result never leaves `root`.
 * Components that do not exist are kept as written. Returns the resolved in-container path (absolute, with no
 * symlink in its existing part at the time of the call). For use while nothing else changes the tree; operations
 * that may race the container go through the fd walk ({@link openDirInRoot}).
 *
 * @example
 * await resolveInRoot('/mnt/rootfs', '/etc/../x/y'); // '/x/y', or '/real/y' when /x -> /real
 */
export async function resolveInRoot(root: string, containerPath: string): Promise<string> {
  const pending = splitPath(containerPath);
  const done: string[] = [];
  let links = 0;
  while (pending.length > 0) {
    const part = pending.shift()!;
    if (part === '..') {
      done.pop();
      continue;
    }
    const candidate = [...done, part];
    const target = await readLinkIfAny(path.join(root, ...candidate));
    if (target === undefined) {
      done.push(part);
      continue;
    }
    if (++links > MAX_SYMLINKS) throw Object.assign(new Error(`too many symlinks resolving ${containerPath}`), { code: 'ELOOP' });
    if (target.startsWith('/')) done.length = 0;
    pending.unshift(...splitPath(target));
  }
  return '/' + done.join('/');
}

async function readLinkIfAny(p: string): Promise<string | undefined> {
  try {
    const st = await lstat(p);
    return st.isSymbolicLink() ? await readlink(p) : undefined;
  } catch (err) {
    if (isWalkStop(err)) return undefined;
    throw err;
  }
}

function splitPath(p: string): string[] {
  return p.split('/').filter((s) => s !== '' && s !== '.');
}
