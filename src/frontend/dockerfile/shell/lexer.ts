import { DockerfileError } from '../../../errors/index.js';
import { CodePointReader, isDigit, isLetter, isSpace } from './chars.js';
import { PatternError, replacePattern, trimPatternPrefix, trimPatternSuffix } from './pattern.js';
import type { EnvLookup, ShellLexer, ShellLexerOptions, WordResult } from './types.js';

/** A lexing failure inside one word; wrapped into a DockerfileError naming the word at the top. */
class LexFailure extends Error {
  constructor(message: string, readonly hint?: string) {
    super(message);
  }
}

const SPECIAL_PARAMS = new Set(['@', '*', '#', '?', '-', '$', '!', '0']);
const HEREDOC_SPACE = new Set(['\t', '\r', ' ']);
const MISSING_BRACE = "syntax error: missing '}'";

/** The text being built for the current word of a split. Shared by nested scans, as upstream shares it. */
interface WordBuffer {
  text: string;
}

/** Collects split words: unquoted whitespace ends a word, quoted text never does. */
class WordSplitter {
  readonly words: string[] = [];
  private inWord = false;

  constructor(private readonly buf: WordBuffer) {}

  addChar(ch: string): void {
    if (isSpace(ch)) {
      if (this.inWord && this.buf.text.length !== 0) {
        this.words.push(this.buf.text);
        this.buf.text = '';
        this.inWord = false;
      }
    } else {
      this.addRawChar(ch);
    }
  }

  addRawChar(ch: string): void {
    this.buf.text += ch;
    this.inWord = true;
  }

  addString(text: string): void {
    for (const ch of text) this.addChar(ch);
  }

  addRawString(text: string): void {
    this.buf.text += text;
    this.inWord = true;
  }

  finish(): string[] {
    if (this.buf.text.length > 0) {
      this.words.push(this.buf.text);
      this.buf.text = '';
      this.inWord = false;
    }
    return this.words;
  }
}

interface ScanResult {
  text: string;
  words: string[];
}

interface Lookup {
  value: string;
  set: boolean;
}

/** State of one processWord / processWords call. */
class WordScan {
  readonly matched = new Set<string>();
  readonly unmatched = new Set<string>();
  private readonly reader: CodePointReader;
  private readonly escapeToken: string;
  /**
   * Upstream keeps a single word buffer per call and every nested `${V:-...}` scan clears it, so in
   * processWords the text gathered before such an expansion in the same word is lost
   * (`a${X:-b}` splits to `b`). Kept on purpose for parity with BuildKit.
   */
  private readonly wordBuffer: WordBuffer = { text: '' };
  private rawEscapes: boolean;

  constructor(
    word: string,
    private readonly env: EnvLookup,
    private readonly opts: ShellLexerOptions,
  ) {
    this.reader = new CodePointReader(word);
    this.escapeToken = opts.escapeToken ?? '\\';
    this.rawEscapes = opts.rawEscapes ?? false;
  }

  run(): ScanResult {
    return this.scanUntil('', this.rawEscapes);
  }

  /** Scan until `stop` (consumed) or, when `stop` is `''`, the end of input. */
  private scanUntil(stop: string, rawEscapes: boolean): ScanResult {
    const saved = this.rawEscapes;
    this.rawEscapes = rawEscapes;
    try {
      return this.scanWith(stop);
    } finally {
      this.rawEscapes = saved;
    }
  }

  private scanWith(stop: string): ScanResult {
    const r = this.reader;
    let text = '';
    this.wordBuffer.text = '';
    const words = new WordSplitter(this.wordBuffer);
    while (r.peek() !== '') {
      const ch = r.peek();
      if (stop !== '' && ch === stop) {
        r.next();
        return { text, words: words.finish() };
      }
      const special = this.specialFor(ch);
      if (special) {
        const piece = special();
        text += piece;
        if (ch === '$') words.addString(piece);
        else words.addRawString(piece);
        continue;
      }
      let c = r.next();
      if (c === this.escapeToken) {
        if (this.rawEscapes) {
          words.addRawChar(c);
          text += c;
        }
        c = r.next();
        if (c === '') break; // a lone trailing escape is dropped
        words.addRawChar(c);
      } else {
        words.addChar(c);
      }
      text += c;
    }
    if (stop !== '') throw new LexFailure(`unexpected end of statement while looking for matching ${stop}`);
    return { text, words: words.finish() };
  }

  private specialFor(ch: string): (() => string) | undefined {
    if (ch === '$') return () => this.dollar();
    if (ch === '<') return () => this.possibleHeredoc();
    if (this.opts.skipProcessQuotes) return undefined;
    if (ch === "'") return () => this.singleQuoted();
    if (ch === '"') return () => this.doubleQuoted();
    return undefined;
  }

  /** Everything up to the next `'` is literal; there is no escape inside single quotes. */
  private singleQuoted(): string {
    const r = this.reader;
    const raw = this.opts.rawQuotes ?? false;
    const open = r.next();
    let out = raw ? open : '';
    for (;;) {
      const ch = r.next();
      if (ch === '') throw new LexFailure('unexpected end of statement while looking for matching single-quote');
      if (ch === "'") return raw ? out + ch : out;
      out += ch;
    }
  }

  /** Inside `"..."` only `$` expands; the escape token escapes `"`, `$` and itself and is literal elsewhere. */
  private doubleQuoted(): string {
    const r = this.reader;
    const raw = this.opts.rawQuotes ?? false;
    const open = r.next();
    let out = raw ? open : '';
    for (;;) {
      const next = r.peek();
      if (next === '') throw new LexFailure('unexpected end of statement while looking for matching double-quote');
      if (next === '"') {
        r.next();
        return raw ? out + next : out;
      }
      if (next === '$') {
        out += this.dollar();
        continue;
      }
      let ch = r.next();
      if (ch === this.escapeToken) {
        if (this.rawEscapes) out += ch;
        const following = r.peek();
        if (following === '') continue; // the unterminated quote is reported on the next turn
        if (following === '"' || following === '$' || following === this.escapeToken) ch = r.next();
      }
      out += ch;
    }
  }

  /** `<<` plus any blanks after it stay together, so `<< EOF` is not split. */
  private possibleHeredoc(): string {
    const r = this.reader;
    r.next();
    if (r.peek() !== '<') return '<';
    r.next();
    let out = '<<';
    while (HEREDOC_SPACE.has(r.peek())) out += r.next();
    return out;
  }

  private dollar(): string {
    const r = this.reader;
    r.next();
    if (r.peek() !== '{') return this.simpleVar();
    r.next();
    const first = r.peek();
    if (first === '') throw new LexFailure(MISSING_BRACE);
    if (first === '{' || first === '}' || first === ':') throw new LexFailure('syntax error: bad substitution');
    const name = this.readName();
    const op = r.next();
    if (op === '}') return this.plainBraced(name);
    if (op === ':') return this.modifier({ name, op: r.next(), nullIsUnset: true });
    if (op === '+' || op === '-' || op === '?' || op === '#' || op === '%') {
      return this.modifier({ name, op, nullIsUnset: false });
    }
    if (op === '/') return this.substitution(name);
    if (op === '') throw new LexFailure(MISSING_BRACE);
    throw unsupportedModifier(op);
  }

  /** `$NAME`, `$1`, `$@`; a `$` not followed by a name stays `$`. */
  private simpleVar(): string {
    const name = this.readName();
    if (name === '') return '$';
    const { value, set } = this.lookup(name);
    if (!set && this.opts.skipUnsetEnv) return `$${name}`;
    return value;
  }

  private plainBraced(name: string): string {
    const { value, set } = this.lookup(name);
    if (!set && this.opts.skipUnsetEnv) return `\${${name}}`;
    return value;
  }

  /** `${V-w}`, `${V:-w}`, `${V+w}`, `${V:+w}`, `${V?w}`, `${V:?w}`, `${V#p}`, `${V##p}`, `${V%p}`, `${V%%p}`. */
  private modifier(m: { name: string; op: string; nullIsUnset: boolean }): string {
    const label = (m.nullIsUnset ? ':' : '') + m.op;
    const isTrim = m.op === '#' || m.op === '%';
    if (m.nullIsUnset && isTrim) throw unsupportedModifier(label);
    const word = this.scanArgument('}', isTrim, MISSING_BRACE);
    const { value, set } = this.lookup(m.name);
    if (!set && this.opts.skipUnsetEnv) return `\${${m.name}${label}${word}}`;
    const unsetOrNull = !set || (m.nullIsUnset && value === '');
    switch (m.op) {
      case '-':
        return unsetOrNull ? word : value;
      case '+':
        return unsetOrNull ? '' : word;
      case '?':
        return this.required({ name: m.name, value, set, nullIsUnset: m.nullIsUnset, message: word });
      case '#':
      case '%':
        return this.trim({ name: m.name, op: m.op, value, word });
      default:
        throw unsupportedModifier(label);
    }
  }

  private required(r: { name: string; value: string; set: boolean; nullIsUnset: boolean; message: string }): string {
    if (!r.set) {
      throw new LexFailure(`${r.name}: ${r.message || 'is not allowed to be unset'}`, `set ${r.name} with ARG or ENV`);
    }
    if (r.nullIsUnset && r.value === '') {
      throw new LexFailure(`${r.name}: ${r.message || 'is not allowed to be empty'}`, `give ${r.name} a non-empty value`);
    }
    return r.value;
  }

  private trim(t: { name: string; op: '#' | '%'; value: string; word: string }): string {
    const greedy = t.word.startsWith(t.op);
    const pattern = greedy ? t.word.slice(1) : t.word;
    try {
      return t.op === '%'
        ? trimPatternSuffix(pattern, t.value, greedy)
        : trimPatternPrefix(pattern, t.value, greedy);
    } catch (err) {
      throw invalidPattern(pattern, err);
    }
  }

  /** `${V/p/r}` replaces the first match, `${V//p/r}` every match. */
  private substitution(name: string): string {
    const all = this.reader.peek() === '/';
    if (all) this.reader.next();
    const pattern = this.scanArgument('/', true, "syntax error: missing '/' in ${}");
    const replacement = this.scanArgument('}', true, MISSING_BRACE);
    const { value, set } = this.lookup(name);
    if (!set && this.opts.skipUnsetEnv) return `\${${name}/${pattern}/${replacement}}`;
    try {
      return replacePattern({ pattern, value, replacement, all });
    } catch (err) {
      throw invalidPattern(pattern, err);
    }
  }

  /** Scan a nested argument up to `stop`; running out of input reports `atEnd`. */
  private scanArgument(stop: string, rawEscapes: boolean, atEnd: string): string {
    try {
      return this.scanUntil(stop, rawEscapes).text;
    } catch (err) {
      if (err instanceof LexFailure && this.reader.peek() === '') throw new LexFailure(atEnd);
      throw err;
    }
  }

  /** A name: a run of digits, one special parameter, or letters, digits and `_`. May be empty. */
  private readName(): string {
    const r = this.reader;
    const first = r.peek();
    if (isDigit(first)) {
      let digits = '';
      while (isDigit(r.peek())) digits += r.next();
      return digits;
    }
    if (SPECIAL_PARAMS.has(first)) return r.next();
    let name = '';
    for (let ch = r.peek(); isLetter(ch) || isDigit(ch) || ch === '_'; ch = r.peek()) name += r.next();
    return name;
  }

  private lookup(name: string): Lookup {
    const value = this.env(name);
    if (value !== undefined) {
      this.matched.add(name);
      return { value, set: true };
    }
    this.unmatched.add(name);
    return { value: '', set: false };
  }
}

function unsupportedModifier(label: string): LexFailure {
  return new LexFailure(`unsupported modifier (${label}) in substitution`);
}

function invalidPattern(pattern: string, err: unknown): unknown {
  if (!(err instanceof PatternError)) return err;
  return new LexFailure(`invalid pattern (${pattern}) in substitution: ${err.message}`);
}

/**
 * Create a lexer for Dockerfile words (ENV, ARG, COPY, ADD, WORKDIR, USER, LABEL, EXPOSE, FROM, ...).
 * Supports `$V`, `${V}`, `${V-w}`, `${V:-w}`, `${V+w}`, `${V:+w}`, `${V?msg}`, `${V:?msg}`, `${V#p}`, `${V##p}`,
 * `${V%p}`, `${V%%p}`, `${V/p/r}` and `${V//p/r}`, with BuildKit's quoting, escaping and splitting rules.
 * Errors are DockerfileErrors with code ERR_KILN_DOCKERFILE_SYNTAX and no location; callers add the line.
 *
 * @example
 * const lex = createShellLexer();
 * lex.processWord('${HOME:-/root}/app', envLookupFrom(['HOME=/home/u'])); // '/home/u/app'
 * lex.processWords('80 "${PORTS}"', envLookupFrom(['PORTS=443 8080'])); // ['80', '443 8080']
 */
export function createShellLexer(opts: ShellLexerOptions = {}): ShellLexer {
  const frozen: ShellLexerOptions = { ...opts };
  const scan = (word: string, env: EnvLookup): { scan: WordScan; result: ScanResult } => {
    const s = new WordScan(word, env, frozen);
    try {
      return { scan: s, result: s.run() };
    } catch (err) {
      if (!(err instanceof LexFailure)) throw err;
      throw new DockerfileError(`failed to process ${JSON.stringify(word)}: ${err.message}`, undefined, {
        code: 'ERR_KILN_DOCKERFILE_SYNTAX',
        ...(err.hint === undefined ? {} : { hint: err.hint }),
        details: { word, reason: err.message },
      });
    }
  };
  return {
    processWord: (word, env) => scan(word, env).result.text,
    processWordWithMatches: (word, env): WordResult => {
      const { scan: s, result } = scan(word, env);
      return { result: result.text, matched: s.matched, unmatched: s.unmatched };
    },
    processWords: (word, env) => scan(word, env).result.words,
  };
}
