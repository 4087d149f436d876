/**
 * Writing extended attributes (read once, with the sources, by src/context). Node has no xattr API: one
 * `setfattr --restore` per copy (the `attr` package). Missing tools mean no xattrs are copied;
 * errors setting one attribute are ignored, as BuildKit logs and ignores them.
 * @internal
 */
import { spawnSync } from 'node:child_process';

/** Names never copied: overlayfs bookkeeping. */
const SKIPPED_PREFIXES = ['trusted.overlay.'];

/** One path's attributes, values hex-encoded without the 0x prefix. */
export type XattrMap = Map<string, string>;

/** Collects attributes to set and applies them in one batch. */
export class XattrWriter {
  private readonly pending = new Map<string, XattrMap>();

  /** Queue attributes for `path` (later calls for the same path merge in). */
  set(path: string, attrs: XattrMap): void {
    if (attrs.size === 0) return;
    const cur = this.pending.get(path);
    if (!cur) this.pending.set(path, new Map(attrs));
    else for (const [k, v] of attrs) cur.set(k, v);
  }

  /** Write everything queued. Returns false when setfattr is missing. */
  flush(): boolean {
    if (this.pending.size === 0) return true;
    const lines: string[] = [];
    for (const [p, attrs] of this.pending) {
      lines.push(`# file: ${quotePath(p)}`);
      for (const [k, v] of attrs) lines.push(`${k}=0x${v}`);
      lines.push('');
    }
    this.pending.clear();
    const res = spawnSync('setfattr', ['-h', '--restore=-'], { input: lines.join('\n') + '\n', stdio: ['pipe', 'ignore', 'ignore'] });
    return !(res.error && (res.error as NodeJS.ErrnoException).code === 'ENOENT');
  }
}

/** getfattr's path quoting: bytes that are control characters, non-ASCII or '\' become \ooo. */
function quotePath(p: string): string {
  let s = '';
  for (const b of Buffer.from(p)) {
    if (b < 0x21 || b >= 0x7f || b === 0x5c || b === 0x3d) s += '\\' + b.toString(8).padStart(3, '0');
    else s += String.fromCharCode(b);
  }
  return s;
}

/** Encode an xattr value given as a string (PAX records) to hex. */
export function hexOfString(value: string): string {
  return Buffer.from(value, 'utf8').toString('hex');
}
