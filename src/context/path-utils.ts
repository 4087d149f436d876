/**
 * Path helpers with Go `path.Clean` / `strings.TrimSpace` semantics, so that patterns and paths are
 * normalised exactly as Docker's patternmatcher and ignorefile reader do.
 * @internal
 */

/** Lexically clean a '/'-separated path like Go's `path.Clean` (collapse `//`, drop `.`, resolve `x/..`). */
export function cleanPath(p: string): string {
  if (p === '') return '.';
  const rooted = p.charCodeAt(0) === 47; /* '/' */
  if (isAlreadyClean(p, rooted)) return p;
  const out: string[] = [];
  for (const part of p.split('/')) {
    if (part === '' || part === '.') continue;
    if (part === '..') {
      if (out.length > 0 && out[out.length - 1] !== '..') out.pop();
      else if (!rooted) out.push('..');
      continue;
    }
    out.push(part);
  }
  const joined = out.join('/');
  if (rooted) return `/${joined}`;
  return joined === '' ? '.' : joined;
}

function isAlreadyClean(p: string, rooted: boolean): boolean {
  if (p === '/') return true;
  if (p.endsWith('/')) return false;
  const body = rooted ? p.slice(1) : p;
  if (body === '.' || body === '..') return false;
  if (body.startsWith('/') || body.startsWith('./') || body.startsWith('../')) return false;
  return !(body.includes('//') || body.includes('/./') || body.includes('/../') ||
    body.endsWith('/.') || body.endsWith('/..'));
}

/** Go's `filepath.Dir` for '/'-separated paths. */
export function dirName(p: string): string {
  const i = p.lastIndexOf('/');
  return cleanPath(i < 0 ? '' : p.slice(0, i + 1));
}

const GO_SPACE = '\\t\\n\\v\\f\\r \\u0085\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000';
const TRIM_RE = new RegExp(`^[${GO_SPACE}]+|[${GO_SPACE}]+$`, 'g');

/** Go's `strings.TrimSpace` (JavaScript's `trim()` also strips U+FEFF and misses U+0085). */
export function trimSpace(s: string): string {
  return s.replace(TRIM_RE, '');
}

/** Join a relative path onto a relative base ('' or '.' is the root). */
export function joinRel(base: string, name: string): string {
  return base === '' || base === '.' ? name : `${base}/${name}`;
}

/** Byte-order-ish comparison of names as Go's sort.Strings does (UTF-16 order; equal for BMP text). */
export function compareNames(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
