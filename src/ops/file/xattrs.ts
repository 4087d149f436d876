/**
 * Writing extended attributes (read once, with the sources, by src/context): one lsetxattr per attribute through
 * src/sys (a symlink is not followed). Errors setting one attribute are ignored, as BuildKit logs and ignores them.
 * @internal
 */
import { setXattr } from '../../sys/index.js';

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

  /** Write everything queued (after the copier's chown, which clears file capabilities). */
  flush(): void {
    for (const [p, attrs] of this.pending) {
      for (const [k, v] of attrs) {
        if (SKIPPED_PREFIXES.some((s) => k.startsWith(s))) continue;
        try {
          setXattr(p, k, Buffer.from(v, 'hex'));
        } catch {
          /* ignored, as BuildKit does */
        }
      }
    }
    this.pending.clear();
  }
}

/** Encode an xattr value given as a string (PAX records) to hex. */
export function hexOfString(value: string): string {
  return Buffer.from(value, 'utf8').toString('hex');
}
