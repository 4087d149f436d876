/**
 * The libc calls Node has no API for, through koffi (a C FFI with prebuilt binaries on npm): mount(2), umount2(2) and
 * the l*xattr(2) calls (they never follow a symlink). Each was a child process before (`mount`, `umount`, `getfattr`,
 * `setfattr`): forking this process costs 7–11 ms here, the call itself 0.01–0.5 ms. koffi is loaded at the first
 * call, so a build that mounts nothing (a fully cached one) never pays its ~11 ms.
 *
 * Every call is synchronous (koffi.errno() is the calling thread's errno, read right after the call). A failure
 * throws an Error with Node's `code` (ENOENT, EINVAL, ...), `errno` and `syscall`, like node:fs does.
 */
import { createRequire } from 'node:module';
import os from 'node:os';

interface Koffi {
  load(name: string): { func(signature: string): (...args: unknown[]) => number };
  errno(): number;
}

interface Libc {
  koffi: Koffi;
  mount(source: string | null, target: string, fstype: string | null, flags: number, data: string | null): number;
  umount2(target: string, flags: number): number;
  llistxattr(path: string, list: Buffer | null, size: number): number;
  lgetxattr(path: string, name: string, value: Buffer | null, size: number): number;
  lsetxattr(path: string, name: string, value: Buffer, size: number, flags: number): number;
}

let libc: Libc | undefined;

function load(): Libc {
  if (libc) return libc;
  const koffi = createRequire(import.meta.url)('koffi') as Koffi;
  const lib = koffi.load('libc.so.6');
  libc = {
    koffi,
    mount: lib.func('int mount(const char *source, const char *target, const char *fstype, unsigned long flags, const char *data)'),
    umount2: lib.func('int umount2(const char *target, int flags)'),
    llistxattr: lib.func('long llistxattr(const char *path, _Out_ uint8_t *list, size_t size)'),
    lgetxattr: lib.func('long lgetxattr(const char *path, const char *name, _Out_ uint8_t *value, size_t size)'),
    lsetxattr: lib.func('int lsetxattr(const char *path, const char *name, const uint8_t *value, size_t size, int flags)'),
  } as Libc;
  return libc;
}

const ERRNO_NAMES = new Map(Object.entries(os.constants.errno).map(([name, n]) => [n, name]));

/** The error node:fs would throw for this errno: `code`, `errno` (negative, as Node's), `syscall`, `path`. */
function sysError(syscall: string, errno: number, path: string): NodeJS.ErrnoException {
  const code = ERRNO_NAMES.get(errno) ?? `E${errno}`;
  const err = new Error(`${code}: ${describe(code)}, ${syscall} '${path}'`) as NodeJS.ErrnoException;
  err.code = code;
  err.errno = -errno;
  err.syscall = syscall;
  err.path = path;
  return err;
}

const DESCRIPTIONS: Record<string, string> = {
  ENOENT: 'no such file or directory',
  EINVAL: 'invalid argument',
  EPERM: 'operation not permitted',
  EACCES: 'permission denied',
  EBUSY: 'device or resource busy',
  ENOTSUP: 'operation not supported',
  EOPNOTSUPP: 'operation not supported',
  ENODATA: 'no such attribute',
  ENOSPC: 'no space left on device',
  ERANGE: 'result too large',
  E2BIG: 'argument list too long',
  ENOTDIR: 'not a directory',
  ELOOP: 'too many levels of symbolic links',
};

function describe(code: string): string {
  return DESCRIPTIONS[code] ?? code.toLowerCase();
}

/** Mount flags (linux/mount.h). */
export const MS_NOSUID = 0x2;
export const MS_NODEV = 0x4;
export const MS_NOEXEC = 0x8;
/** umount2 flag: detach now, finish when the last user is gone (`umount -l`). */
export const MNT_DETACH = 0x2;

/** mount(2). */
export function mount(source: string, target: string, fstype: string, flags: number, data: string): void {
  const c = load();
  if (c.mount(source, target, fstype, flags, data) !== 0) throw sysError('mount', c.koffi.errno(), target);
}

/** umount2(2); `flags` 0 or {@link MNT_DETACH}. */
export function umount(target: string, flags = 0): void {
  const c = load();
  if (c.umount2(target, flags) !== 0) throw sysError('umount2', c.koffi.errno(), target);
}

/** Names of the extended attributes of `path` itself (a symlink is not followed). */
export function listXattrs(path: string): string[] {
  const c = load();
  for (;;) {
    const size = c.llistxattr(path, null, 0);
    if (size < 0) throw sysError('llistxattr', c.koffi.errno(), path);
    if (size === 0) return [];
    const buf = Buffer.alloc(size);
    const n = c.llistxattr(path, buf, size);
    if (n < 0) {
      const errno = c.koffi.errno();
      if (ERRNO_NAMES.get(errno) === 'ERANGE') continue; // the list grew between the two calls
      throw sysError('llistxattr', errno, path);
    }
    return buf.toString('utf8', 0, n).split('\0').filter((s) => s !== '');
  }
}

/** The value of one attribute of `path` itself, or undefined when it has none by that name. */
export function getXattr(path: string, name: string): Buffer | undefined {
  const c = load();
  for (;;) {
    const size = c.lgetxattr(path, name, null, 0);
    if (size < 0) {
      const errno = c.koffi.errno();
      if (ERRNO_NAMES.get(errno) === 'ENODATA') return undefined;
      throw sysError('lgetxattr', errno, path);
    }
    const buf = Buffer.alloc(size);
    if (size === 0) return buf;
    const n = c.lgetxattr(path, name, buf, size);
    if (n >= 0) return buf.subarray(0, n);
    const errno = c.koffi.errno();
    if (ERRNO_NAMES.get(errno) === 'ERANGE') continue;
    if (ERRNO_NAMES.get(errno) === 'ENODATA') return undefined;
    throw sysError('lgetxattr', errno, path);
  }
}

/** Every extended attribute of `path` itself, [name, value] in the kernel's order. */
export function xattrsOf(path: string): Array<[string, Buffer]> {
  const out: Array<[string, Buffer]> = [];
  for (const name of listXattrs(path)) {
    const v = getXattr(path, name);
    if (v) out.push([name, v]);
  }
  return out;
}

/** Set one extended attribute of `path` itself (created or replaced). */
export function setXattr(path: string, name: string, value: Buffer): void {
  const c = load();
  if (c.lsetxattr(path, name, value, value.length, 0) !== 0) throw sysError('lsetxattr', c.koffi.errno(), path);
}
