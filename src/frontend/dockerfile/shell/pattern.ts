/**
 * The glob dialect of `${V#p}`, `${V%p}` and `${V/p/r}`: `*` is any run of characters, `?` one character, a
 * backslash escapes `*`, `?` or `\`; everything else (`[`, `(`, `{`, `|`, ...) is literal. No bracket expressions.
 * @internal
 */
import { CodePointReader, isDigit, isLetter } from './chars.js';

/** Thrown for a pattern with a bad escape; the lexer turns it into a user-facing error. @internal */
export class PatternError extends Error {}

const REGEX_SPECIALS = new Set(['[', ']', '{', '}', '.', '+', '(', ')', '|', '^', '$']);

/** Options of {@link shellPatternToRegexSource}. @internal */
export interface PatternOptions {
  /** `*` takes the longest run (`.*`) instead of the shortest (`.*?`). */
  greedy: boolean;
  /** Match only at the start of the value (`^`). */
  anchored: boolean;
}

/**
 * Translate a shell glob into regular-expression source in Go's RE2 syntax, exactly as BuildKit writes it
 * (`*` with greedy and anchored gives `^.*`). A `\` before `}` or `/` is dropped (it only protected the
 * delimiter of `${...}`). Throws PatternError on a trailing `\` or on `\` before any other character.
 * @internal
 */
export function shellPatternToRegexSource(pattern: string, opts: PatternOptions): string {
  const reader = new CodePointReader(pattern);
  let out = opts.anchored ? '^' : '';
  const star = opts.greedy ? '.*' : '.*?';
  for (let tok = reader.next(); tok !== ''; tok = reader.next()) {
    if (tok === '*') {
      out += star;
    } else if (tok === '?') {
      out += '.';
    } else if (tok === '\\') {
      const following = reader.peek();
      if (following === '}' || following === '/') continue;
      const escaped = reader.next();
      if (escaped !== '*' && escaped !== '?' && escaped !== '\\') {
        throw new PatternError(escaped === '' ? "trailing '\\' in pattern" : `invalid escape '\\${escaped}'`);
      }
      out += `\\${escaped}`;
    } else {
      out += REGEX_SPECIALS.has(tok) ? `\\${tok}` : tok;
    }
  }
  return out;
}

/**
 * Compile Go-syntax source from {@link shellPatternToRegexSource} to a JavaScript RegExp with the same meaning.
 * Go's `.` matches any character but `\n`; JavaScript's also skips `\r`, U+2028 and U+2029, so it is spelled out.
 * @internal
 */
export function compileShellPattern(pattern: string, opts: PatternOptions & { global?: boolean }): RegExp {
  const goSource = shellPatternToRegexSource(pattern, opts);
  const jsSource = goSource.replace(/\\[\s\S]|\./gu, (m) => (m === '.' ? '[^\\n]' : m));
  return new RegExp(jsSource, opts.global ? 'gu' : 'u');
}

/**
 * Reverse a pattern while keeping each `\x` escape pair in order (`a\*c` gives `c\*a`), so a suffix can be found
 * as a prefix of the reversed value. A lone trailing `\` stays a single character.
 * @internal
 */
export function reverseShellPattern(pattern: string): string {
  const chars = Array.from(pattern);
  const out = new Array<string>(chars.length);
  const last = chars.length - 1;
  for (let i = 0; i <= last; ) {
    const outIdx = last - i;
    if (chars[i] === '\\' && i !== last) {
      out[outIdx - 1] = '\\';
      out[outIdx] = chars[i + 1];
      i += 2;
    } else {
      out[outIdx] = chars[i];
      i++;
    }
  }
  return out.join('');
}

/** Reverse a string by code points. @internal */
export function reverseCodePoints(text: string): string {
  return Array.from(text).reverse().join('');
}

/** Remove the shortest (or with `greedy` the longest) prefix of `value` matching `pattern`. @internal */
export function trimPatternPrefix(pattern: string, value: string, greedy: boolean): string {
  const re = compileShellPattern(pattern, { greedy, anchored: true });
  const m = re.exec(value);
  return m ? value.slice(m.index + m[0].length) : value;
}

/** Remove the shortest (or with `greedy` the longest) suffix of `value` matching `pattern`. @internal */
export function trimPatternSuffix(pattern: string, value: string, greedy: boolean): string {
  const trimmed = trimPatternPrefix(reverseShellPattern(pattern), reverseCodePoints(value), greedy);
  return reverseCodePoints(trimmed);
}

/** `${V/p/r}` and `${V//p/r}`: replace the first (or every) leftmost match of `pattern` in `value`. @internal */
export function replacePattern(opts: { pattern: string; value: string; replacement: string; all: boolean }): string {
  const re = compileShellPattern(opts.pattern, { greedy: true, anchored: false, global: true });
  if (!opts.all) {
    const m = re.exec(opts.value);
    if (!m) return opts.value;
    return opts.value.slice(0, m.index) + opts.replacement + opts.value.slice(m.index + m[0].length);
  }
  return replaceAllLikeGo(re, opts.value, opts.replacement);
}

/**
 * Go's `Regexp.ReplaceAllString`: non-overlapping leftmost matches; an empty match right after a previous match is
 * not replaced; the replacement is a template where `$0` is the match and `$$` a dollar sign.
 */
function replaceAllLikeGo(re: RegExp, src: string, template: string): string {
  let out = '';
  let lastMatchEnd = 0;
  let searchPos = 0;
  while (searchPos <= src.length) {
    re.lastIndex = searchPos;
    const m = re.exec(src);
    if (!m) break;
    const start = m.index;
    const end = start + m[0].length;
    out += src.slice(lastMatchEnd, start);
    if (end > lastMatchEnd || start === 0) out += expandGoTemplate(template, m[0]);
    lastMatchEnd = end;
    const width = searchPos < src.length ? String.fromCodePoint(src.codePointAt(searchPos) ?? 0).length : 0;
    if (searchPos + width > end) searchPos += width;
    else if (searchPos + 1 > end) searchPos++;
    else searchPos = end;
  }
  return out + src.slice(lastMatchEnd);
}

/**
 * Go's `Regexp.Expand` for a pattern whose only group is the whole match: `$$` is `$`, `$0` / `${0}` the match,
 * any other well-formed `$name` / `${name}` is empty, and a malformed one stays as written.
 */
function expandGoTemplate(template: string, match: string): string {
  let out = '';
  let rest = template;
  for (;;) {
    const dollar = rest.indexOf('$');
    if (dollar < 0) break;
    out += rest.slice(0, dollar);
    rest = rest.slice(dollar + 1);
    if (rest.startsWith('$')) {
      out += '$';
      rest = rest.slice(1);
      continue;
    }
    const ref = readTemplateRef(rest);
    if (!ref) {
      out += '$';
      continue;
    }
    rest = ref.rest;
    if (ref.name === '0') out += match;
  }
  return out + rest;
}

function readTemplateRef(text: string): { name: string; rest: string } | undefined {
  const chars = Array.from(text);
  const brace = chars[0] === '{';
  let i = brace ? 1 : 0;
  let name = '';
  while (i < chars.length && (isLetter(chars[i]) || isDigit(chars[i]) || chars[i] === '_')) name += chars[i++];
  if (name === '') return undefined;
  if (brace) {
    if (chars[i] !== '}') return undefined;
    i++;
  }
  return { name, rest: chars.slice(i).join('') };
}
