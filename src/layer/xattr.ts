/**
 * Extended attributes of layer trees, through the l*xattr calls (src/sys: never follows a symlink). Reading is one
 * llistxattr per entry the layer writer's walk found (a few µs each), and lgetxattr only for entries that have any;
 * writing is one lsetxattr per attribute. (Until this used libc directly, each tree cost a `getfattr -R` child and
 * each unpack a `setfattr --restore` child: 7–11 ms to fork this process here, per step.)
 * @internal
 */
import { BuildError } from '../errors/index.js';
import { setXattr, xattrsOf } from '../sys/index.js';

/** Absolute path → list of [name, value]. */
export type XattrMap = Map<string, Array<[string, Buffer]>>;

/** A file system without extended attributes (or without that namespace) answers one of these. */
function unsupported(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException).code;
  return code === 'ENOTSUP' || code === 'EOPNOTSUPP';
}

/** The xattrs of each of `paths` (absolute; symlinks not followed). Paths without xattrs are absent. */
export function readXattrsOf(paths: Iterable<string>, signal?: AbortSignal): XattrMap {
  const map: XattrMap = new Map();
  let n = 0;
  for (const p of paths) {
    if ((++n & 1023) === 0) signal?.throwIfAborted();
    let attrs: Array<[string, Buffer]>;
    try {
      attrs = xattrsOf(p);
    } catch (err) {
      if (unsupported(err)) continue;
      throw new BuildError('ERR_KILN_INTERNAL', `reading extended attributes of ${p} failed: ${(err as Error).message}`, { cause: err });
    }
    if (attrs.length > 0) map.set(p, attrs);
  }
  return map;
}

/** A failure to set one attribute: the file system does not support it. */
export interface XattrFailure {
  line: string;
}

/**
 * Set xattrs on many files. Paths must be absolute. "Operation not supported" failures (a file system without that
 * namespace) are returned; any other failure throws.
 */
export async function restoreXattrs(
  items: ReadonlyArray<{ path: string; attrs: ReadonlyArray<readonly [string, Buffer]> }>,
  signal?: AbortSignal,
): Promise<XattrFailure[]> {
  const failures: XattrFailure[] = [];
  let n = 0;
  for (const it of items) {
    for (const [name, value] of it.attrs) {
      if ((++n & 1023) === 0) signal?.throwIfAborted();
      try {
        setXattr(it.path, name, value);
      } catch (err) {
        if (unsupported(err)) failures.push({ line: `${it.path}: ${name}: ${(err as Error).message}` });
        else throw new BuildError('ERR_KILN_INTERNAL', `setting extended attributes failed: ${it.path}: ${name}: ${(err as Error).message}`, { cause: err });
      }
    }
  }
  return failures;
}
