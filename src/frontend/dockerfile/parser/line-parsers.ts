/**
 * Per-keyword argument rules: how the text after an instruction keyword becomes the `next` chain.
 * Mirrors BuildKit's line_parsers.go.
 */
import type { Node } from './types.js';
import { isSpace, quoteGo, splitWhitespace, splitWhitespaceOnce, toWellFormed, trimLeftSpace } from './text.js';

/** A problem in one instruction; the parser turns it into a located DockerfileError. */
export class ParseProblem extends Error {}

/** What a line parser hands back: the first argument node and whether the arguments were JSON. */
export interface ParsedArgs {
  next?: Node;
  json?: boolean;
}

/** Context a line parser needs. `parseLine` parses a whole instruction line (used by ONBUILD). */
export interface LineContext {
  escapeToken: string;
  parseLine(line: string): Node;
}

/** A fresh argument node. @internal */
export function argNode(value: string, next?: Node): Node {
  const n: Node = { value, children: [], heredocs: [], original: '', flags: [], startLine: 0, endLine: 0 };
  if (next) n.next = next;
  return n;
}

function chain(values: string[]): Node | undefined {
  let head: Node | undefined;
  for (let i = values.length - 1; i >= 0; i--) head = argNode(values[i], head);
  return head;
}

/**
 * Split text into words at unquoted whitespace, keeping quotes and escapes in the words
 * (BuildKit's parseWords, used by ENV, LABEL and ARG).
 * @example parseWords('a "b c"', '\\') // ['a', '"b c"']
 */
export function parseWords(rest: string, escapeToken: string): string[] {
  const cps = Array.from(rest);
  const words: string[] = [];
  let phase: 'spaces' | 'word' | 'quote' = 'spaces';
  let quote = '';
  let blankOK = false;
  let word = '';
  for (let i = 0; i <= cps.length; i++) {
    const ch = i < cps.length ? cps[i] : '';
    const atEnd = i === cps.length;
    if (phase === 'spaces') {
      if (atEnd) break;
      if (isSpace(ch.codePointAt(0)!)) continue;
      phase = 'word';
    }
    if (atEnd) {
      if (blankOK || word.length > 0) words.push(word);
      break;
    }
    if (phase === 'word') {
      if (isSpace(ch.codePointAt(0)!)) {
        phase = 'spaces';
        if (blankOK || word.length > 0) words.push(word);
        word = '';
        blankOK = false;
        continue;
      }
      if (ch === "'" || ch === '"') {
        quote = ch;
        blankOK = true;
        phase = 'quote';
      }
      if (ch === escapeToken) {
        if (i + 1 === cps.length) continue;
        word += ch;
        i++;
        word += cps[i];
        continue;
      }
      word += ch;
      continue;
    }
    // in quote
    if (ch === quote) phase = 'word';
    if (ch === escapeToken && quote !== "'") {
      if (i + 1 === cps.length) {
        phase = 'word';
        continue;
      }
      word += ch;
      i++;
      word += cps[i];
      continue;
    }
    word += ch;
  }
  return words;
}

function keyValue(key: string, value: string, sep: string): string[] {
  return [key, value, sep];
}

function parseNameVal(rest: string, keyword: string, ctx: LineContext): ParsedArgs {
  const words = parseWords(rest, ctx.escapeToken);
  if (words.length === 0) return {};
  if (!words[0].includes('=')) {
    const parts = splitWhitespaceOnce(rest);
    if (parts.length < 2) throw new ParseProblem(`${keyword} must have two arguments`);
    return { next: chain(keyValue(parts[0], parts[1], '')) };
  }
  const values: string[] = [];
  for (const w of words) {
    const eq = w.indexOf('=');
    if (eq < 0) {
      throw new ParseProblem(`Syntax error - can't find = in ${quoteGo(w)}. Must be of the form: name=value`);
    }
    values.push(...keyValue(w.slice(0, eq), w.slice(eq + 1), '='));
  }
  return { next: chain(values) };
}

function parseNameOrNameVal(rest: string, ctx: LineContext): ParsedArgs {
  return { next: chain(parseWords(rest, ctx.escapeToken)) };
}

function parseStringsWhitespaceDelimited(rest: string): ParsedArgs {
  if (rest === '') return {};
  return { next: chain(splitWhitespace(rest)) };
}

function parseString(rest: string): ParsedArgs {
  if (rest === '') return {};
  return { next: argNode(rest) };
}

/** Why a text is not usable as exec form. `not-strings` is a hard error; the others fall back. */
type JsonOutcome = { ok: true; values: string[] } | { ok: false; hard: boolean };

/**
 * Exec-form detection: a JSON array of strings after optional leading whitespace.
 * A valid JSON array with a non-string element is a hard error (BuildKit's errDockerfileNotStringArray).
 */
export function parseJsonArray(text: string): JsonOutcome {
  const t = trimLeftSpace(text);
  if (!t.startsWith('[')) return { ok: false, hard: false };
  let overflow = false;
  let parsed: unknown;
  try {
    parsed = JSON.parse(t, (_k, v: unknown) => {
      if (typeof v === 'number' && !Number.isFinite(v)) overflow = true;
      return v;
    });
  } catch {
    return { ok: false, hard: false };
  }
  // Go's decoder reports a number too large for float64 as an error, which means "not JSON" here.
  if (overflow || !Array.isArray(parsed)) return { ok: false, hard: false };
  const values: string[] = [];
  for (const el of parsed) {
    if (typeof el !== 'string') return { ok: false, hard: true };
    values.push(toWellFormed(el));
  }
  return { ok: true, values };
}

/** The hard error for a JSON array that holds something other than strings. */
export const NOT_STRING_ARRAY = 'when using JSON array syntax, arrays must be comprised of strings only';

function parseJson(rest: string): ParsedArgs | undefined {
  const r = parseJsonArray(rest);
  if (r.ok) return { next: chain(r.values), json: true };
  if (r.hard) throw new ParseProblem(NOT_STRING_ARRAY);
  return undefined;
}

function parseMaybeJson(rest: string): ParsedArgs {
  if (rest === '') return {};
  return parseJson(rest) ?? { next: argNode(rest) };
}

function parseMaybeJsonToList(rest: string): ParsedArgs {
  return parseJson(rest) ?? parseStringsWhitespaceDelimited(rest);
}

function isSpaceUnit(s: string, i: number): boolean {
  return isSpace(s.charCodeAt(i));
}

function parseHealthConfig(rest: string): ParsedArgs {
  let sep = 0;
  while (sep < rest.length && !isSpaceUnit(rest, sep)) sep++;
  let next = sep;
  while (next < rest.length && isSpaceUnit(rest, next)) next++;
  if (sep === 0) return {};
  const cmd = parseMaybeJson(rest.slice(next));
  return { next: argNode(rest.slice(0, sep), cmd.next), json: cmd.json };
}

function parseSubCommand(rest: string, ctx: LineContext): ParsedArgs {
  if (rest === '') return {};
  const child = ctx.parseLine(rest);
  const holder = argNode('');
  holder.children = [child];
  return { next: holder };
}

type LineParser = (rest: string, ctx: LineContext) => ParsedArgs;

const DISPATCH: Record<string, LineParser> = {
  add: parseMaybeJsonToList,
  arg: parseNameOrNameVal,
  cmd: parseMaybeJson,
  copy: parseMaybeJsonToList,
  entrypoint: parseMaybeJson,
  env: (rest, ctx) => parseNameVal(rest, 'ENV', ctx),
  expose: parseStringsWhitespaceDelimited,
  from: parseStringsWhitespaceDelimited,
  healthcheck: parseHealthConfig,
  label: (rest, ctx) => parseNameVal(rest, 'LABEL', ctx),
  maintainer: parseString,
  onbuild: parseSubCommand,
  run: parseMaybeJson,
  shell: parseMaybeJson,
  stopsignal: parseString,
  user: parseString,
  volume: parseMaybeJsonToList,
  workdir: parseString,
};

/**
 * Parse the arguments of one instruction. Unknown keywords give a single empty argument node
 * (they fail later, in the instruction layer).
 */
export function parseArguments(keyword: string, rest: string, ctx: LineContext): ParsedArgs {
  const fn = DISPATCH[keyword.toLowerCase()];
  if (!fn) return { next: argNode('') };
  return fn(rest, ctx);
}

/** Keywords whose lines may open heredocs. */
export const HEREDOC_KEYWORDS: ReadonlySet<string> = new Set(['add', 'copy', 'run']);
