import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { lstatInRoot, mkdirAllInRoot, resolveInRoot } from '../../fsroot/index.js';

export { resolveInRoot };

/** The host path of an in-container path, after {@link resolveInRoot}. */
export async function hostPathInRoot(rootfs: string, containerPath: string): Promise<string> {
  return path.join(rootfs, await resolveInRoot(rootfs, containerPath));
}

/** Read a file of the rootfs (e.g. /etc/passwd) safely; undefined when it does not exist. */
export async function readRootFile(rootfs: string, containerPath: string): Promise<string | undefined> {
  try {
    return await readFile(await hostPathInRoot(rootfs, containerPath), 'utf8');
  } catch (err) {
    if (isMissing(err)) return undefined;
    throw err;
  }
}

/**
 * Create a directory (and its parents) inside the rootfs as Docker does for WORKDIR: owned by the caller (root),
 * mode 0755 whatever the umask. Existing directories are left alone; nothing is created through a symlink.
 */
export async function ensureDirInRoot(rootfs: string, containerPath: string): Promise<void> {
  const resolved = await resolveInRoot(rootfs, containerPath);
  mkdirAllInRoot({ root: rootfs, inRoot: resolved, mode: 0o755 });
  const st = lstatInRoot(rootfs, resolved);
  if (!st?.isDirectory()) throw Object.assign(new Error(`${containerPath} is not a directory`), { code: 'ENOTDIR' });
}

/** True for ENOENT and ENOTDIR. */
export function isMissing(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  return code === 'ENOENT' || code === 'ENOTDIR';
}
