/**
 * Operations on paths inside a container's root filesystem that never leave it, whatever the container did to the
 * tree. Node has no openat(2); the same effect comes from walking the path one component at a time, each opened with
 * O_NOFOLLOW | O_DIRECTORY relative to the directory before it through its `/proc/self/fd/<fd>` link (the kernel
 * resolves the link to the open directory itself, not to a path that can be swapped). A component that is a symlink,
 * not a directory, or missing stops the walk: the operation is then skipped, never redirected.
 * @internal
 */
import fs from 'node:fs';

const { O_RDONLY, O_DIRECTORY, O_NOFOLLOW, O_CLOEXEC } = fs.constants as typeof fs.constants & { O_CLOEXEC?: number };
const DIR_FLAGS = O_RDONLY | O_DIRECTORY | O_NOFOLLOW | (O_CLOEXEC ?? 0o2000000);

/** The components of an in-root path; `.` and empty parts dropped. `..` is refused: callers pass resolved paths. */
export function components(inRoot: string): string[] {
  const parts = inRoot.split('/').filter((s) => s !== '' && s !== '.');
  if (parts.includes('..')) throw new Error(`fsroot: ${JSON.stringify(inRoot)} is not a resolved path`);
  return parts;
}

/** The path through which `name` inside the open directory `dirFd` is reached without re-resolving its parents. */
export function atPath(dirFd: number, name?: string): string {
  return name === undefined ? `/proc/self/fd/${dirFd}` : `/proc/self/fd/${dirFd}/${name}`;
}

/** True when the error means the walk hit something that is not a plain directory (or nothing). */
export function isWalkStop(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  return code === 'ENOENT' || code === 'ENOTDIR' || code === 'ELOOP';
}

/**
 * Open the directory `inRoot` of `root` without following any symlink below `root` (root itself is kiln's own path).
 * Returns the fd, or undefined when a component is missing, a symlink or not a directory. The caller closes it.
 */
export function openDirInRoot(root: string, inRoot: string): number | undefined {
  let fd: number;
  try {
    fd = fs.openSync(root, O_RDONLY | O_DIRECTORY | (O_CLOEXEC ?? 0o2000000));
  } catch (err) {
    if (isWalkStop(err)) return undefined;
    throw err;
  }
  for (const part of components(inRoot)) {
    let next: number;
    try {
      next = fs.openSync(atPath(fd, part), DIR_FLAGS);
    } catch (err) {
      fs.closeSync(fd);
      if (isWalkStop(err)) return undefined;
      throw err;
    }
    fs.closeSync(fd);
    fd = next;
  }
  return fd;
}

/** Run `fn` with the open directory `inRoot` of `root` (see {@link openDirInRoot}); undefined when it cannot be reached. */
export function withDirInRoot<T>(root: string, inRoot: string, fn: (dirFd: number) => T): T | undefined {
  const fd = openDirInRoot(root, inRoot);
  if (fd === undefined) return undefined;
  try {
    return fn(fd);
  } finally {
    fs.closeSync(fd);
  }
}

function splitLast(inRoot: string): { parent: string; name: string } | undefined {
  const parts = components(inRoot);
  const name = parts.pop();
  return name === undefined ? undefined : { parent: parts.join('/'), name };
}

/** lstat of `inRoot` inside `root` with no symlink followed on the way; undefined when it cannot be reached. */
export function lstatInRoot(root: string, inRoot: string): fs.Stats | undefined {
  const split = splitLast(inRoot);
  if (!split) return withDirInRoot(root, '', (fd) => fs.fstatSync(fd));
  return withDirInRoot(root, split.parent, (fd) => fs.lstatSync(atPath(fd, split.name), { throwIfNoEntry: false }) ?? undefined) ?? undefined;
}

/**
 * Remove `inRoot` when it is an empty directory or an empty regular file, reached with no symlink followed. Anything
 * else (content, a symlink, something unreachable) is left alone. True when removed.
 */
export function removeIfEmptyInRoot(root: string, inRoot: string): boolean {
  const split = splitLast(inRoot);
  if (!split) return false;
  return (
    withDirInRoot(root, split.parent, (fd) => {
      const p = atPath(fd, split.name);
      const st = fs.lstatSync(p, { throwIfNoEntry: false });
      try {
        if (st?.isDirectory()) {
          fs.rmdirSync(p);
          return true;
        }
        if (st?.isFile() && st.size === 0) {
          fs.unlinkSync(p);
          return true;
        }
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code === 'ENOTEMPTY' || code === 'EEXIST' || code === 'EBUSY' || isWalkStop(err)) return false;
        throw err;
      }
      return false;
    }) ?? false
  );
}

/** Set the times of the directory `inRoot` (reached with no symlink followed) through its fd; false when unreachable. */
export function setDirTimesInRoot(opts: { root: string; inRoot: string; atimeMs: number; mtimeMs: number }): boolean {
  return withDirInRoot(opts.root, opts.inRoot, (fd) => {
    fs.futimesSync(fd, opts.atimeMs / 1000, opts.mtimeMs / 1000);
    return true;
  }) ?? false;
}

/**
 * mkdir -p of the resolved path `inRoot` inside `root`, each directory created in (and opened from) the one before it:
 * created directories get `mode` whatever the umask; an existing component must be a real directory (a symlink or a
 * file in the way throws ENOTDIR).
 */
export function mkdirAllInRoot(opts: { root: string; inRoot: string; mode: number }): void {
  let fd = fs.openSync(opts.root, O_RDONLY | O_DIRECTORY | (O_CLOEXEC ?? 0o2000000));
  try {
    for (const part of components(opts.inRoot)) {
      const p = atPath(fd, part);
      let created = false;
      try {
        fs.mkdirSync(p);
        created = true;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      }
      let next: number;
      try {
        next = fs.openSync(p, DIR_FLAGS);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ELOOP') throw Object.assign(new Error(`/${opts.inRoot} is not a directory`), { code: 'ENOTDIR' });
        throw err;
      }
      fs.closeSync(fd);
      fd = next;
      if (created) fs.fchmodSync(fd, opts.mode);
    }
  } finally {
    fs.closeSync(fd);
  }
}
