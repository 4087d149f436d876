/**
 * Parser directives (`# syntax=`, `# escape=`, `# check=`), read only at the top of a Dockerfile.
 * Mirrors BuildKit's DirectiveParser, DetectSyntax and ParseDirective.
 */
import { trimLeftSpace } from './text.js';

const KNOWN_DIRECTIVES = new Set(['syntax', 'escape', 'check']);
/** Go `\s` is ASCII only: `[\t\n\f\r ]`. */
const DIRECTIVE_RE = /^([a-zA-Z][a-zA-Z0-9]*)[\t\n\f\r ]*=[\t\n\f\r ]*(.+?)[\t\n\f\r ]*$/;

/** One parser directive found at the top of a file. */
export interface Directive {
  /** lower-cased name */
  name: string;
  value: string;
  /** 1-based line */
  line: number;
}

/** Thrown (as a plain problem string) when a directive is repeated; the caller adds the location. */
export class DirectiveProblem extends Error {}

/**
 * Stateful reader of directive lines: call `parseLine` for each line in order. It stops for good at the
 * first line that is not a known directive comment.
 * @internal
 */
export class DirectiveReader {
  private line: number;
  private readonly prefix: string;
  private readonly seen = new Set<string>();
  done = false;

  constructor(opts: { prefix?: string; startLine?: number } = {}) {
    this.prefix = opts.prefix ?? '#';
    this.line = opts.startLine ?? 0;
  }

  /** Returns the directive on this line, or undefined. Throws DirectiveProblem for a repeated directive. */
  parseLine(text: string): Directive | undefined {
    this.line++;
    if (this.done) return undefined;
    if (!text.startsWith(this.prefix)) {
      this.done = true;
      return undefined;
    }
    const m = DIRECTIVE_RE.exec(trimLeftSpace(text.slice(this.prefix.length)));
    if (!m) {
      this.done = true;
      return undefined;
    }
    const name = m[1].toLowerCase();
    if (!KNOWN_DIRECTIVES.has(name)) {
      this.done = true;
      return undefined;
    }
    if (this.seen.has(name)) throw new DirectiveProblem(`only one ${name} parser directive can be used`);
    this.seen.add(name);
    return { name, value: m[2], line: this.line };
  }

  /** Read every directive line of `text` (Go bufio.ScanLines: split on \n, drop one trailing \r). */
  parseAll(text: string): Directive[] {
    const out: Directive[] = [];
    for (const line of scanLinesStripped(text)) {
      if (this.done) break;
      const d = this.parseLine(line);
      if (d) out.push(d);
    }
    return out;
  }
}

function scanLinesStripped(text: string): string[] {
  if (text === '') return [];
  const lines = text.split('\n');
  if (lines[lines.length - 1] === '') lines.pop();
  return lines.map((l) => (l.endsWith('\r') ? l.slice(0, -1) : l));
}

/** Result of looking for one directive in a whole file. */
export interface DirectiveLookup {
  found: boolean;
  /** the value up to the first space (`syntax`: the frontend image reference) */
  value: string;
  /** the whole value */
  cmdline: string;
  /** 1-based line of the directive; 0 when not found or from a JSON file */
  line: number;
}

const NOT_FOUND: DirectiveLookup = { found: false, value: '', cmdline: '', line: 0 };

function lookupWith(key: string, text: string, reader: DirectiveReader): DirectiveLookup | undefined {
  let directives: Directive[];
  try {
    directives = reader.parseAll(text);
  } catch {
    directives = [];
  }
  const d = directives.find((x) => x.name === key);
  if (!d) return undefined;
  const space = d.value.indexOf(' ');
  return { found: true, value: space < 0 ? d.value : d.value.slice(0, space), cmdline: d.value, line: d.line };
}

function stripBomAndShebang(text: string): { body: string; shebang: boolean } {
  const body = text.startsWith('\ufeff') ? text.slice(1) : text;
  const nl = body.indexOf('\n');
  const first = nl < 0 ? body : body.slice(0, nl);
  if (first.startsWith('#!')) return { body: nl < 0 ? '' : body.slice(nl + 1), shebang: true };
  return { body, shebang: false };
}

function lookupDirective(key: string, text: string, anyFormat: boolean): DirectiveLookup {
  const { body, shebang } = stripBomAndShebang(text);
  const startLine = shebang ? 1 : 0;
  const hashed = lookupWith(key, body, new DirectiveReader({ startLine }));
  if (hashed) return hashed;
  if (!anyFormat) return NOT_FOUND;
  const slashed = lookupWith(key, body, new DirectiveReader({ startLine, prefix: '//' }));
  if (slashed) return slashed;
  try {
    const obj: unknown = JSON.parse(body);
    if (obj !== null && typeof obj === 'object' && !Array.isArray(obj)) {
      const v = (obj as Record<string, unknown>)[key];
      if (typeof v === 'string') return { found: true, value: v, cmdline: v, line: startLine };
    }
  } catch {
    // not JSON
  }
  return NOT_FOUND;
}

/**
 * Find the `syntax` directive as BuildKit's DetectSyntax does: `# syntax=`, then `// syntax=`, then a
 * whole-file JSON object `{"syntax": ...}`; a leading `#!` line and a UTF-8 BOM are skipped.
 * @example detectSyntax('# syntax=docker/dockerfile:1\nFROM x\n').value // 'docker/dockerfile:1'
 */
export function detectSyntax(text: string): DirectiveLookup {
  return lookupDirective('syntax', text, true);
}

/**
 * Find a `#`-style directive such as `check` (BuildKit's ParseDirective).
 * @example findDirective('check', '# check=skip=all\nFROM x\n').value // 'skip=all'
 */
export function findDirective(key: string, text: string): DirectiveLookup {
  return lookupDirective(key.toLowerCase(), text, false);
}

/**
 * Every `#` directive at the top of `text`, in order (BuildKit's DirectiveParser.ParseAll).
 * Stops at the first line that is not a known directive; throws DirectiveProblem for a repeated one.
 * @example parseDirectives('# escape=`\n# syntax=x\nFROM y\n').map((d) => d.name) // ['escape', 'syntax']
 */
export function parseDirectives(text: string): Directive[] {
  return new DirectiveReader().parseAll(text);
}
