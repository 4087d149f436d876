/**
 * Heredoc detection for RUN/COPY/ADD lines, as BuildKit does it: the instruction line is split into shell
 * words (quotes and escapes kept, `$` references left alone because no variable is set), and each word
 * that looks like `[n]<<[-]WORD` opens a heredoc.
 */
import type { Heredoc } from './types.js';
import { isSpace, quoteGo } from './text.js';

const EOF = -1;

/** Options for the small shell-word splitter (BuildKit's shell.Lex with an empty environment). */
interface LexOptions {
  rawQuotes: boolean;
  rawEscapes: boolean;
}

class LexProblem extends Error {}

/**
 * Word splitter over code points. Only what heredoc detection needs: quotes, backslash escapes,
 * `<<` runs, and `$name` / `${...}` references kept verbatim (every variable is unset).
 */
class WordLexer {
  private readonly cps: number[];
  private pos = 0;
  /** shared between nested calls, exactly like the upstream lexer's words buffer */
  private buf = '';
  private rawEscapes: boolean;

  constructor(text: string, private readonly opts: LexOptions) {
    this.cps = Array.from(text, (c) => c.codePointAt(0)!);
    this.rawEscapes = opts.rawEscapes;
  }

  private peek(): number {
    return this.pos < this.cps.length ? this.cps[this.pos] : EOF;
  }

  private next(): number {
    return this.pos < this.cps.length ? this.cps[this.pos++] : EOF;
  }

  words(): string[] {
    return this.processStopOn(EOF, this.rawEscapes).words;
  }

  private processStopOn(stop: number, rawEscapes: boolean): { result: string; words: string[] } {
    let result = '';
    this.buf = '';
    const w = new WordCollector(this);
    const saved = this.rawEscapes;
    this.rawEscapes = rawEscapes;
    try {
      while (this.peek() !== EOF) {
        const ch = this.peek();
        if (stop !== EOF && ch === stop) {
          this.next();
          return { result, words: w.finish() };
        }
        const special = this.special(ch);
        if (special) {
          const tmp = special();
          result += tmp;
          if (ch === 0x24 /* $ */) w.addString(tmp);
          else w.addRawString(tmp);
          continue;
        }
        let c = this.next();
        if (c === 0x5c /* \ */) {
          if (this.rawEscapes) {
            w.addRawChar(c);
            result += String.fromCodePoint(c);
          }
          c = this.next();
          if (c === EOF) break;
          w.addRawChar(c);
        } else {
          w.addChar(c);
        }
        result += String.fromCodePoint(c);
      }
      if (stop !== EOF) {
        throw new LexProblem(`unexpected end of statement while looking for matching ${String.fromCodePoint(stop)}`);
      }
      return { result, words: w.finish() };
    } finally {
      this.rawEscapes = saved;
    }
  }

  private special(ch: number): (() => string) | undefined {
    switch (ch) {
      case 0x24: return () => this.processDollar();
      case 0x3c: return () => this.processPossibleHeredoc();
      case 0x27: return () => this.processSingleQuote();
      case 0x22: return () => this.processDoubleQuote();
      default: return undefined;
    }
  }

  getBuf(): string { return this.buf; }
  setBuf(v: string): void { this.buf = v; }

  private processSingleQuote(): string {
    let out = '';
    const open = this.next();
    if (this.opts.rawQuotes) out += String.fromCodePoint(open);
    for (;;) {
      const c = this.next();
      if (c === EOF) throw new LexProblem('unexpected end of statement while looking for matching single-quote');
      if (c === 0x27) {
        if (this.opts.rawQuotes) out += "'";
        return out;
      }
      out += String.fromCodePoint(c);
    }
  }

  private processDoubleQuote(): string {
    let out = '';
    const open = this.next();
    if (this.opts.rawQuotes) out += String.fromCodePoint(open);
    for (;;) {
      const p = this.peek();
      if (p === EOF) throw new LexProblem('unexpected end of statement while looking for matching double-quote');
      if (p === 0x22) {
        this.next();
        if (this.opts.rawQuotes) out += '"';
        return out;
      }
      if (p === 0x24) {
        out += this.processDollar();
        continue;
      }
      let c = this.next();
      if (c === 0x5c) {
        if (this.rawEscapes) out += '\\';
        const q = this.peek();
        if (q === EOF) continue;
        if (q === 0x22 || q === 0x24 || q === 0x5c) c = this.next();
      }
      out += String.fromCodePoint(c);
    }
  }

  private processName(): string {
    let name = '';
    while (this.peek() !== EOF) {
      const c = this.peek();
      const s = String.fromCodePoint(c);
      if (name === '' && /\p{Nd}/u.test(s)) {
        while (this.peek() !== EOF && /\p{Nd}/u.test(String.fromCodePoint(this.peek()))) {
          name += String.fromCodePoint(this.next());
        }
        return name;
      }
      if (name === '' && '@*#?-$!0'.includes(s)) {
        this.next();
        return s;
      }
      if (!/[\p{L}\p{Nd}_]/u.test(s)) break;
      name += String.fromCodePoint(this.next());
    }
    return name;
  }

  private processDollar(): string {
    this.next();
    if (this.peek() !== 0x7b /* { */) {
      const name = this.processName();
      return name === '' ? '$' : '$' + name;
    }
    this.next();
    const p = this.peek();
    if (p === EOF) throw new LexProblem("syntax error: missing '}'");
    if (p === 0x7b || p === 0x7d || p === 0x3a) throw new LexProblem('syntax error: bad substitution');
    const name = this.processName();
    let ch = this.next();
    let chs = ch === EOF ? '' : String.fromCodePoint(ch);
    let nullIsUnset = false;
    if (ch === 0x7d) return '${' + name + '}';
    if (ch === 0x3a /* : */) {
      nullIsUnset = true;
      ch = this.next();
      chs += ch === EOF ? '' : String.fromCodePoint(ch);
    }
    if (nullIsUnset || ch === 0x2b || ch === 0x2d || ch === 0x3f || ch === 0x23 || ch === 0x25) {
      const raw = ch === 0x23 || ch === 0x25;
      if (nullIsUnset && raw) throw new LexProblem(`unsupported modifier (${chs}) in substitution`);
      const word = this.nested(0x7d, raw, "syntax error: missing '}'");
      return '${' + name + chs + word + '}';
    }
    if (ch === 0x2f /* / */) {
      if (this.peek() === 0x2f) this.next();
      const pattern = this.nested(0x2f, true, "syntax error: missing '/' in ${}");
      const replacement = this.nested(0x7d, true, "syntax error: missing '}'");
      return '${' + name + '/' + pattern + '/' + replacement + '}';
    }
    throw new LexProblem(`unsupported modifier (${chs}) in substitution`);
  }

  private nested(stop: number, raw: boolean, atEof: string): string {
    try {
      return this.processStopOn(stop, raw).result;
    } catch (err) {
      if (this.peek() === EOF) throw new LexProblem(atEof);
      throw err;
    }
  }

  private processPossibleHeredoc(): string {
    this.next();
    if (this.peek() !== 0x3c) return '<';
    this.next();
    let space = '';
    for (let c = this.peek(); c === 0x09 || c === 0x0d || c === 0x20; c = this.peek()) {
      space += String.fromCodePoint(c);
      this.next();
    }
    return '<<' + space;
  }
}

class WordCollector {
  private readonly out: string[] = [];
  private inWord = false;
  constructor(private readonly lx: WordLexer) {}

  addChar(c: number): void {
    if (isSpace(c)) {
      if (this.inWord && this.lx.getBuf() !== '') {
        this.out.push(this.lx.getBuf());
        this.lx.setBuf('');
        this.inWord = false;
      }
    } else {
      this.addRawChar(c);
    }
  }

  addRawChar(c: number): void {
    this.lx.setBuf(this.lx.getBuf() + String.fromCodePoint(c));
    this.inWord = true;
  }

  addString(s: string): void {
    for (const ch of s) this.addChar(ch.codePointAt(0)!);
  }

  addRawString(s: string): void {
    this.lx.setBuf(this.lx.getBuf() + s);
    this.inWord = true;
  }

  finish(): string[] {
    if (this.lx.getBuf() !== '') {
      this.out.push(this.lx.getBuf());
      this.lx.setBuf('');
      this.inWord = false;
    }
    return this.out;
  }
}

function lexWords(text: string, opts: LexOptions): string[] {
  return new WordLexer(text, opts).words();
}

/** Go `\s` is ASCII: `[\t\n\f\r ]`. */
const HEREDOC_RE = /^(\d*)<<(-?)[\t\n\f\r ]*([^<]*)$/;

/** A heredoc word was malformed (for example an unterminated quote in `<<'EOF`). */
export class HeredocProblem extends Error {}

/**
 * Parse one word as a heredoc opener (`<<EOF`, `<<-'EOF'`, `3<<EOF`). Returns undefined when the word is
 * not a heredoc; throws HeredocProblem when it is one but its delimiter cannot be lexed.
 * Content is empty; the parser fills it in.
 * @example parseHeredocWord('<<-"EOF"') // { name: 'EOF', expand: false, chomp: true, fileDescriptor: 0, content: '' }
 */
export function parseHeredocWord(word: string): Heredoc | undefined {
  const m = HEREDOC_RE.exec(word);
  if (!m) return undefined;
  const rest = m[3];
  if (rest.length === 0) return undefined;
  let words: string[];
  let raw: string[];
  try {
    words = lexWords(rest, { rawQuotes: false, rawEscapes: false });
    if (words.length !== 1) return undefined;
    raw = lexWords(rest, { rawQuotes: true, rawEscapes: false });
  } catch (err) {
    if (err instanceof LexProblem) throw new HeredocProblem(`failed to process ${quoteGo(rest)}: ${err.message}`);
    throw err;
  }
  if (raw.length !== words.length) {
    throw new HeredocProblem(`internal lexing of heredoc produced inconsistent results: ${rest}`);
  }
  const count = (s: string): number => (s.match(/['"]/g) ?? []).length;
  const fd = m[1] === '' ? 0 : Number.parseInt(m[1], 10);
  return {
    name: words[0],
    content: '',
    expand: count(words[0]) === count(raw[0]),
    chomp: m[2] === '-',
    fileDescriptor: Number.isSafeInteger(fd) ? fd : 0,
  };
}

/** Every heredoc opened on an instruction line, in order. Throws HeredocProblem for a malformed one. */
export function heredocsFromLine(line: string): Heredoc[] {
  let words: string[];
  try {
    words = lexWords(line, { rawQuotes: true, rawEscapes: true });
  } catch (err) {
    if (err instanceof LexProblem) words = [];
    else throw err;
  }
  const docs: Heredoc[] = [];
  for (const word of words) {
    const doc = parseHeredocWord(word);
    if (doc) docs.push(doc);
  }
  return docs;
}

/**
 * Remove leading TAB characters from every line (what `<<-` means).
 * @example chompHeredocContent('\thello\n\tworld\n') // 'hello\nworld\n'
 */
export function chompHeredocContent(content: string): string {
  return content.replace(/(?<=^|\n)\t+/g, '');
}
