/**
 * Extended attributes. Node has no xattr API, so they are read with one `getfattr -R` per copied source and
 * written with one `setfattr --restore` per copy (the `attr` package). Missing tools mean no xattrs are copied;
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

/**
 * Read the attributes of `path` and, when it is a directory, of everything below it (symlinks not followed).
 * Returns absolute path -> attributes, only for paths that have some.
 */
export function readXattrsRecursive(path: string): Map<string, XattrMap> {
  const out = new Map<string, XattrMap>();
  const res = spawnSync('getfattr', ['-R', '-h', '-d', '-m', '-', '-e', 'hex', '--absolute-names', '--', path], {
    encoding: 'buffer',
    maxBuffer: 1 << 30,
    stdio: ['ignore', 'pipe', 'ignore'],
  });
  if (res.error || !res.stdout || res.stdout.length === 0) return out;
  let current: XattrMap | undefined;
  for (const line of res.stdout.toString('latin1').split('\n')) {
    if (line.startsWith('# file: ')) {
      current = new Map();
      out.set(unquotePath(line.slice(8)), current);
      continue;
    }
    if (!current || line === '') continue;
    const eq = line.indexOf('=');
    const name = eq < 0 ? line : line.slice(0, eq);
    if (SKIPPED_PREFIXES.some((p) => name.startsWith(p))) continue;
    const value = eq < 0 ? '' : line.slice(eq + 1);
    current.set(name, value.startsWith('0x') ? value.slice(2) : Buffer.from(value, 'latin1').toString('hex'));
  }
  for (const [k, v] of out) if (v.size === 0) out.delete(k);
  return out;
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

/** Inverse of the quoting; input is a latin1 view of the raw bytes. */
function unquotePath(q: string): string {
  const bytes: number[] = [];
  for (let i = 0; i < q.length; i++) {
    if (q[i] === '\\' && /^[0-7]{3}$/.test(q.slice(i + 1, i + 4))) {
      bytes.push(parseInt(q.slice(i + 1, i + 4), 8));
      i += 3;
    } else {
      bytes.push(q.charCodeAt(i) & 0xff);
    }
  }
  return Buffer.from(bytes).toString('utf8');
}

/** Encode an xattr value given as a string (PAX records) to hex. */
export function hexOfString(value: string): string {
  return Buffer.from(value, 'utf8').toString('hex');
}
