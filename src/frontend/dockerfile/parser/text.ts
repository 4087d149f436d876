/**
 * Character helpers that follow Go's definitions (unicode.IsSpace, strings.TrimSpace, strconv.Quote),
 * so the parser splits and prints exactly as BuildKit does.
 * @internal
 */

/** Go's unicode.IsSpace for one code point. */
export function isSpace(cp: number): boolean {
  if (cp <= 0xff) {
    return cp === 0x20 || (cp >= 0x09 && cp <= 0x0d) || cp === 0x85 || cp === 0xa0;
  }
  return cp === 0x1680 || (cp >= 0x2000 && cp <= 0x200a) || cp === 0x2028 || cp === 0x2029 ||
    cp === 0x202f || cp === 0x205f || cp === 0x3000;
}

/** Go's strings.TrimLeftFunc(s, unicode.IsSpace). */
export function trimLeftSpace(s: string): string {
  let i = 0;
  while (i < s.length) {
    const cp = s.codePointAt(i)!;
    if (!isSpace(cp)) break;
    i += cp > 0xffff ? 2 : 1;
  }
  return s.slice(i);
}

/** Go's strings.TrimRightFunc(s, unicode.IsSpace). */
export function trimRightSpace(s: string): string {
  let end = s.length;
  while (end > 0) {
    let start = end - 1;
    const low = s.charCodeAt(start);
    if (low >= 0xdc00 && low <= 0xdfff && start > 0) {
      const high = s.charCodeAt(start - 1);
      if (high >= 0xd800 && high <= 0xdbff) start -= 1;
    }
    if (!isSpace(s.codePointAt(start)!)) break;
    end = start;
  }
  return s.slice(0, end);
}

/** Go's strings.TrimSpace. */
export function trimSpace(s: string): string {
  return trimRightSpace(trimLeftSpace(s));
}

/** BuildKit's `[\t\v\f\r ]+` run, the separator between keyword and arguments and between list words. */
export const WHITESPACE_RUN = /[\t\v\f\r ]+/;

/** Go's regexp.Split(s, -1) for WHITESPACE_RUN. */
export function splitWhitespace(s: string): string[] {
  return s.split(/[\t\v\f\r ]+/);
}

/** Go's regexp.Split(s, 2) for WHITESPACE_RUN. */
export function splitWhitespaceOnce(s: string): string[] {
  const m = WHITESPACE_RUN.exec(s);
  if (!m) return [s];
  return [s.slice(0, m.index), s.slice(m.index + m[0].length)];
}

/** Replace lone UTF-16 surrogates with U+FFFD, as Go does when decoding JSON `\u` escapes. */
export function toWellFormed(s: string): string {
  return s.replace(/[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g, '\ufffd');
}

const PRINTABLE = /^[\p{L}\p{M}\p{N}\p{P}\p{S}]$/u;

function hex(n: number, width: number): string {
  return n.toString(16).padStart(width, '0');
}

const SIMPLE_ESCAPES: Record<number, string> = {
  0x07: '\\a', 0x08: '\\b', 0x0c: '\\f', 0x0a: '\\n', 0x0d: '\\r', 0x09: '\\t', 0x0b: '\\v',
};

/** Go's strconv.Quote: a double-quoted string with Go escapes for non-printable runes. */
export function quoteGo(s: string): string {
  let out = '"';
  for (const ch of s) {
    let cp = ch.codePointAt(0)!;
    if (ch === '"' || ch === '\\') {
      out += '\\' + ch;
    } else if (cp === 0x20 || (cp > 0x20 && cp !== 0x7f && PRINTABLE.test(ch))) {
      out += ch;
    } else if (SIMPLE_ESCAPES[cp] !== undefined) {
      out += SIMPLE_ESCAPES[cp];
    } else if (cp < 0x20 || cp === 0x7f) {
      out += '\\x' + hex(cp, 2);
    } else {
      if (cp >= 0xd800 && cp <= 0xdfff) cp = 0xfffd;
      out += cp < 0x10000 ? '\\u' + hex(cp, 4) : '\\U' + hex(cp, 8);
    }
  }
  return out + '"';
}

/** Length of `s` in UTF-8 bytes. */
export function utf8Length(s: string): number {
  return Buffer.byteLength(s, 'utf8');
}
