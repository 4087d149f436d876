/**
 * Reading extended attributes of source entries (Node has no xattr API; `getfattr` from the `attr` package, one call
 * per batch of paths). Values are hex. overlayfs bookkeeping (`trusted.overlay.*`) never reaches an image.
 * @internal
 */
import { spawnSync } from 'node:child_process';

const SKIPPED_PREFIXES = ['trusted.overlay.'];
const BATCH = 400;

/** Attributes of each path (symlinks not followed); paths without attributes are absent from the result. */
export function readXattrsOf(paths: readonly string[]): Map<string, Record<string, string>> {
  const out = new Map<string, Record<string, string>>();
  for (let i = 0; i < paths.length; i += BATCH) {
    const batch = paths.slice(i, i + BATCH);
    const res = spawnSync('getfattr', ['-h', '-d', '-m', '-', '-e', 'hex', '--absolute-names', '--', ...batch], {
      encoding: 'buffer',
      maxBuffer: 1 << 30,
      stdio: ['ignore', 'pipe', 'ignore'],
    });
    if (res.error || !res.stdout || res.stdout.length === 0) continue;
    parse(res.stdout.toString('latin1'), out);
  }
  return out;
}

function parse(text: string, out: Map<string, Record<string, string>>): void {
  let current: Record<string, string> | undefined;
  for (const line of text.split('\n')) {
    if (line.startsWith('# file: ')) {
      current = {};
      out.set(unquotePath(line.slice(8)), current);
      continue;
    }
    if (!current || line === '') continue;
    const eq = line.indexOf('=');
    const name = eq < 0 ? line : line.slice(0, eq);
    if (SKIPPED_PREFIXES.some((p) => name.startsWith(p))) continue;
    const value = eq < 0 ? '' : line.slice(eq + 1);
    current[name] = value.startsWith('0x') ? value.slice(2) : Buffer.from(value, 'latin1').toString('hex');
  }
  for (const [k, v] of out) if (Object.keys(v).length === 0) out.delete(k);
}

/** Inverse of getfattr's \ooo quoting; input is a latin1 view of the raw bytes. */
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
