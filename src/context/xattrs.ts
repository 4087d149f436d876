/**
 * Reading extended attributes of source entries (llistxattr/lgetxattr through src/sys; symlinks not followed).
 * Values are hex. overlayfs bookkeeping (`trusted.overlay.*`) never reaches an image.
 * @internal
 */
import { xattrsOf } from '../sys/index.js';

const SKIPPED_PREFIXES = ['trusted.overlay.'];

/** Attributes of each path (symlinks not followed); paths without attributes, or that cannot be read, are absent. */
export function readXattrsOf(paths: readonly string[]): Map<string, Record<string, string>> {
  const out = new Map<string, Record<string, string>>();
  for (const p of paths) {
    let attrs: Array<[string, Buffer]>;
    try {
      attrs = xattrsOf(p);
    } catch {
      continue; // as getfattr did: a path it cannot read has no attributes here
    }
    const kept: Record<string, string> = {};
    let any = false;
    for (const [name, value] of attrs) {
      if (SKIPPED_PREFIXES.some((s) => name.startsWith(s))) continue;
      kept[name] = value.toString('hex');
      any = true;
    }
    if (any) out.set(p, kept);
  }
  return out;
}
