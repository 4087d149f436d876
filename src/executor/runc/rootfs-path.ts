import { chmod, lstat, mkdir, readFile, readlink, stat } from 'node:fs/promises';
import path from 'node:path';

const MAX_SYMLINKS = 255;

/**
 * Resolve an in-container path against `rootfs` the way the container would see it: symlinks are followed, but
 * absolute targets and `..` never leave `rootfs`. Components that do not exist are kept as written.
 * Returns the resolved in-container path (absolute, with no symlink in its existing part).
 */
export async function resolveInRoot(rootfs: string, containerPath: string): Promise<string> {
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
    const target = await readLinkIfAny(hostPath(rootfs, candidate));
    if (target === undefined) {
      done.push(part);
      continue;
    }
    if (++links > MAX_SYMLINKS) throw new Error(`too many symlinks resolving ${containerPath} in ${rootfs}`);
    if (target.startsWith('/')) done.length = 0;
    pending.unshift(...splitPath(target));
  }
  return '/' + done.join('/');
}

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
 * mode 0755 whatever the umask. Existing directories are left alone.
 */
export async function ensureDirInRoot(rootfs: string, containerPath: string): Promise<void> {
  const resolved = await resolveInRoot(rootfs, containerPath);
  let current = rootfs;
  for (const part of splitPath(resolved)) {
    current = path.join(current, part);
    try {
      await mkdir(current);
      await chmod(current, 0o755);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
  }
  const st = await stat(current);
  if (!st.isDirectory()) throw Object.assign(new Error(`${containerPath} is not a directory`), { code: 'ENOTDIR' });
}

function hostPath(rootfs: string, parts: string[]): string {
  return path.join(rootfs, ...parts);
}

async function readLinkIfAny(p: string): Promise<string | undefined> {
  try {
    const st = await lstat(p);
    return st.isSymbolicLink() ? await readlink(p) : undefined;
  } catch (err) {
    if (isMissing(err)) return undefined;
    throw err;
  }
}

function splitPath(p: string): string[] {
  return p.split('/').filter((s) => s !== '' && s !== '.');
}

/** True for ENOENT and ENOTDIR. */
export function isMissing(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  return code === 'ENOENT' || code === 'ENOTDIR';
}
