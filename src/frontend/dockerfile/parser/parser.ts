/**
 * Dockerfile text to syntax tree, following BuildKit's parser.Parse line for line: directives at the top,
 * continuation lines, comments, empty-continuation warnings, heredoc bodies and line numbers.
 */
import { DockerfileError } from '../../../errors/index.js';
import { DirectiveProblem, DirectiveReader, detectSyntax, findDirective, type Directive } from './directives.js';
import { HeredocProblem, heredocsFromLine } from './heredoc.js';
import { HEREDOC_KEYWORDS, ParseProblem, parseArguments, type LineContext } from './line-parsers.js';
import { splitCommand } from './split-command.js';
import { trimLeftSpace, trimSpace, utf8Length } from './text.js';
import type { Directives, Node, ParseOptions, ParseResult, Warning } from './types.js';

/** Longest physical line BuildKit's scanner accepts, newline included. */
const MAX_LINE_BYTES = 64 * 1024;
const EMPTY_CONTINUATION_URL = 'https://docs.docker.com/go/dockerfile/rule/no-empty-continuation/';
const EMPTY_CONTINUATION_DETAIL = 'Empty continuation lines will become errors in a future release';

type EscapeToken = '\\' | '`';

/** Split like Go's bufio scanner with BuildKit's scanLines: on \n, keeping the line ending. */
function scanLines(text: string): string[] {
  const lines: string[] = [];
  let start = 0;
  while (start < text.length) {
    const nl = text.indexOf('\n', start);
    if (nl < 0) {
      lines.push(text.slice(start));
      break;
    }
    lines.push(text.slice(start, nl + 1));
    start = nl + 1;
  }
  return lines;
}

/** Index of the first line the scanner would reject as too long, or -1. */
function firstTooLongLine(lines: string[]): number {
  for (let i = 0; i < lines.length; i++) {
    const len = utf8Length(lines[i]);
    const limit = lines[i].endsWith('\n') ? MAX_LINE_BYTES : MAX_LINE_BYTES - 1;
    if (len > limit) return i;
  }
  return -1;
}

function trimNewline(s: string): string {
  return s.replace(/[\r\n]+$/, '');
}

function isComment(s: string): boolean {
  return trimLeftSpace(s).startsWith('#');
}

function isEmptyContinuationLine(s: string): boolean {
  return trimLeftSpace(trimNewline(s)).length === 0;
}

function continuationRegex(token: EscapeToken): RegExp {
  const t = token === '\\' ? '\\\\' : '`';
  return new RegExp(`([^${t}])${t}[ \\t]*$|^${t}[ \\t]*$`);
}

function newInstructionNode(): Node {
  return { value: '', children: [], heredocs: [], original: '', flags: [], startLine: 0, endLine: 0 };
}

/** Mutable state of one parse run. */
class ParseRun {
  private escapeToken: EscapeToken = '\\';
  private contRe = continuationRegex('\\');
  private readonly reader = new DirectiveReader();
  readonly directives: Directive[] = [];
  readonly warnings: Warning[] = [];
  private readonly lines: string[];
  private idx = 0;
  private currentLine = 0;
  readonly root: Node = { ...newInstructionNode(), startLine: -1 };

  constructor(lines: string[], private readonly file: string) {
    this.lines = lines;
  }

  get escape(): EscapeToken {
    return this.escapeToken;
  }

  fail(problem: string, line: number): never {
    throw new DockerfileError(problem, { file: this.file, line: Math.max(line, 1) }, { code: 'ERR_KILN_DOCKERFILE_SYNTAX' });
  }

  private scan(): string | undefined {
    return this.idx < this.lines.length ? this.lines[this.idx++] : undefined;
  }

  /** BuildKit's processLine: strip the newline (and optionally leading space), look for a directive, drop comments. */
  private processLine(raw: string, stripLeft: boolean): { text: string; directive: boolean } {
    let token = trimNewline(raw);
    if (stripLeft) token = trimLeftSpace(token);
    const lineNo = this.currentLine + 1;
    let d: Directive | undefined;
    try {
      d = this.reader.parseLine(token);
    } catch (err) {
      if (err instanceof DirectiveProblem) this.fail(err.message, lineNo);
      throw err;
    }
    if (d) {
      if (d.name === 'escape') this.setEscapeToken(d.value, lineNo);
      this.directives.push(d);
    }
    return { text: isComment(token) ? '' : token, directive: d !== undefined };
  }

  private setEscapeToken(value: string, line: number): void {
    if (value !== '`' && value !== '\\') {
      this.fail(`invalid escape token '${value}' does not match \` or \\`, line);
    }
    this.escapeToken = value;
    this.contRe = continuationRegex(value);
  }

  private trimContinuation(text: string): { text: string; end: boolean } {
    if (this.contRe.test(text)) return { text: text.replace(this.contRe, '$1'), end: false };
    return { text, end: true };
  }

  run(): void {
    let comments: string[] = [];
    for (let raw = this.scan(); raw !== undefined; raw = this.scan()) {
      if (this.currentLine === 0 && raw.startsWith('\ufeff')) raw = raw.slice(1);
      if (isComment(raw)) {
        const comment = trimSpace(raw.slice(1));
        comments = comment === '' ? [] : [...comments, comment];
      }
      const first = this.processLine(raw, true);
      if (first.directive) comments = comments.slice(0, -1);
      this.currentLine++;
      const startLine = this.currentLine;
      let { text, end } = this.trimContinuation(first.text);
      if (end && text.length === 0) continue;
      let line = text;
      let hasEmptyContinuation = false;
      while (!end) {
        const nextRaw = this.scan();
        if (nextRaw === undefined) break;
        const cont = this.processLine(nextRaw, false);
        this.currentLine++;
        if (isComment(nextRaw)) continue;
        if (isEmptyContinuationLine(cont.text)) {
          hasEmptyContinuation = true;
          continue;
        }
        ({ text, end } = this.trimContinuation(cont.text));
        line += text;
      }
      if (hasEmptyContinuation) this.warnEmptyContinuation(line, startLine);
      const child = this.nodeFromLine(line, comments, startLine);
      if (canContainHeredoc(child) && line.includes('<<')) this.readHeredocs(child, line, startLine);
      this.addChild(child, startLine);
      comments = [];
    }
  }

  private warnEmptyContinuation(line: string, startLine: number): void {
    this.warnings.push({
      short: `Empty continuation line found in: ${line}`,
      detail: [EMPTY_CONTINUATION_DETAIL],
      url: EMPTY_CONTINUATION_URL,
      location: { startLine, endLine: this.currentLine },
    });
  }

  private nodeFromLine(line: string, comments: string[], startLine: number): Node {
    const ctx: LineContext = {
      escapeToken: this.escapeToken,
      parseLine: (l) => this.buildNode(l, undefined, ctx),
    };
    try {
      return this.buildNode(line, comments, ctx);
    } catch (err) {
      if (err instanceof ParseProblem) this.fail(err.message, startLine);
      throw err;
    }
  }

  private buildNode(line: string, comments: string[] | undefined, ctx: LineContext): Node {
    const { keyword, flags, rest } = splitCommand(line, this.escapeToken);
    const args = parseArguments(keyword, rest, ctx);
    const node: Node = { ...newInstructionNode(), value: keyword.toLowerCase(), keyword, original: line, flags };
    if (args.next) node.next = args.next;
    if (args.json) node.attributes = { json: true };
    if (comments) node.prevComment = [...comments];
    return node;
  }

  private readHeredocs(child: Node, line: string, startLine: number): void {
    let docs;
    try {
      docs = heredocsFromLine(line);
    } catch (err) {
      if (err instanceof HeredocProblem) this.fail(err.message, startLine);
      throw err;
    }
    for (const doc of docs) {
      let terminated = false;
      let content = doc.content;
      for (let raw = this.scan(); raw !== undefined; raw = this.scan()) {
        this.currentLine++;
        let candidate = trimNewline(raw);
        if (doc.chomp) candidate = candidate.replace(/^\t+/, '');
        if (candidate === doc.name) {
          terminated = true;
          break;
        }
        content += raw;
      }
      if (!terminated) this.fail('unterminated heredoc', startLine);
      child.heredocs.push({ ...doc, content });
    }
  }

  private addChild(child: Node, startLine: number): void {
    child.startLine = startLine;
    child.endLine = this.currentLine;
    const trigger = child.value === 'onbuild' ? child.next?.children[0] : undefined;
    if (trigger) {
      trigger.startLine = startLine;
      trigger.endLine = this.currentLine;
    }
    if (this.root.startLine < 0) this.root.startLine = startLine;
    this.root.endLine = this.currentLine;
    this.root.children.push(child);
  }

  get linesRead(): number {
    return this.currentLine;
  }
}

function canContainHeredoc(node: Node): boolean {
  let n = node;
  if (n.value === 'onbuild' && n.next && n.next.children.length > 0) n = n.next.children[0];
  return HEREDOC_KEYWORDS.has(n.value) && !n.attributes?.json;
}

function collectDirectives(found: Directive[], text: string): Directives {
  const out: Directives = { all: found.map((d) => ({ name: d.name, value: d.value, line: d.line })) };
  const escape = found.find((d) => d.name === 'escape');
  if (escape) out.escape = escape.value;
  const syntax = detectSyntax(text);
  if (syntax.found) out.syntax = syntax.value;
  const check = findDirective('check', text);
  if (check.found) out.check = check.value;
  return out;
}

/**
 * Parse Dockerfile text into BuildKit's syntax tree. Pure: no I/O.
 * Throws DockerfileError (`FILE:LINE: problem`) for syntax errors, an empty file, or a line over 65535 bytes.
 * @example
 * const { ast } = parse('FROM alpine\nRUN echo hi\n');
 * ast.children[1].next?.value // 'echo hi'
 */
export function parse(text: string, opts: ParseOptions = {}): ParseResult {
  const file = opts.file ?? 'Dockerfile';
  let lines = scanLines(text);
  const tooLong = firstTooLongLine(lines);
  if (tooLong >= 0) lines = lines.slice(0, tooLong);
  const run = new ParseRun(lines, file);
  run.run();
  if (run.root.startLine < 0) run.fail('file with no instructions', run.linesRead);
  if (tooLong >= 0) run.fail(`dockerfile line greater than max allowed size of ${MAX_LINE_BYTES - 1}`, tooLong + 1);
  return {
    ast: run.root,
    escapeToken: run.escape,
    directives: collectDirectives(run.directives, text),
    warnings: run.warnings,
  };
}
