/** Character classes and a code-point reader shared by the lexer and the pattern converter. @internal */

const LETTER = /^\p{L}$/u;
const DIGIT = /^\p{Nd}$/u;
const SPACE = /^\p{White_Space}$/u;

/** Unicode letter (Go `unicode.IsLetter`). `ch` is one code point; `''` (end of input) is false. */
export function isLetter(ch: string): boolean {
  return LETTER.test(ch);
}

/** Unicode decimal digit (Go `unicode.IsDigit`). */
export function isDigit(ch: string): boolean {
  return DIGIT.test(ch);
}

/** Unicode White_Space (Go `unicode.IsSpace`). */
export function isSpace(ch: string): boolean {
  return SPACE.test(ch);
}

/** Reads a string one code point at a time. `''` stands for end of input. A leading BOM is skipped. */
export class CodePointReader {
  private readonly chars: string[];
  private pos = 0;

  constructor(text: string) {
    this.chars = Array.from(text);
    if (this.chars[0] === '\uFEFF') this.pos = 1;
  }

  /** The next code point without consuming it, or `''` at the end. */
  peek(): string {
    return this.chars[this.pos] ?? '';
  }

  /** Consume and return the next code point, or `''` at the end. */
  next(): string {
    const ch = this.peek();
    if (ch !== '') this.pos++;
    return ch;
  }
}
