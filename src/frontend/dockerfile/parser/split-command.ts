/**
 * Splitting an instruction line into keyword, `--flags` and the rest (BuildKit's split_command.go).
 */
import { isSpace, splitWhitespaceOnce, trimSpace } from './text.js';

/** The three parts of an instruction line. */
export interface SplitLine {
  keyword: string;
  flags: string[];
  rest: string;
}

/**
 * Split an instruction line. The keyword is the first whitespace-delimited word; flags are the leading
 * `--` words of the rest (quotes removed, escapes applied); a bare `--` ends the flags and is dropped.
 * @example splitCommand('COPY --from=a x y', '\\') // { keyword: 'COPY', flags: ['--from=a'], rest: 'x y' }
 */
export function splitCommand(line: string, escapeToken: string): SplitLine {
  const parts = splitWhitespaceOnce(trimSpace(line));
  if (parts.length < 2) return { keyword: parts[0], flags: [], rest: '' };
  const { rest, flags } = extractBuilderFlags(parts[1], escapeToken);
  return { keyword: parts[0], flags, rest: trimSpace(rest) };
}

function isSpaceAt(s: string, i: number): boolean {
  return isSpace(s.charCodeAt(i));
}

/** Take the `--xxx` words off the front of `line`. */
export function extractBuilderFlags(line: string, escapeToken: string): { rest: string; flags: string[] } {
  const flags: string[] = [];
  let phase: 'spaces' | 'word' | 'quote' = 'spaces';
  let word = '';
  let quote = '';
  let blankOK = false;
  for (let pos = 0; pos <= line.length; pos++) {
    const atEnd = pos === line.length;
    let ch = atEnd ? '' : line[pos];
    if (phase === 'spaces') {
      if (atEnd) break;
      if (isSpaceAt(line, pos)) continue;
      if (ch !== '-' || pos + 1 === line.length || line[pos + 1] !== '-') return { rest: line.slice(pos), flags };
      phase = 'word';
    }
    if (atEnd) {
      if (word !== '--' && (blankOK || word.length > 0)) flags.push(word);
      break;
    }
    if (phase === 'word') {
      if (isSpaceAt(line, pos)) {
        phase = 'spaces';
        if (word === '--') return { rest: line.slice(pos), flags };
        if (blankOK || word.length > 0) flags.push(word);
        word = '';
        blankOK = false;
        continue;
      }
      if (ch === "'" || ch === '"') {
        quote = ch;
        blankOK = true;
        phase = 'quote';
        continue;
      }
      if (ch === escapeToken) {
        if (pos + 1 === line.length) continue;
        pos++;
        ch = line[pos];
      }
      word += ch;
      continue;
    }
    // in quote
    if (ch === quote) {
      phase = 'word';
      continue;
    }
    if (ch === escapeToken) {
      if (pos + 1 === line.length) {
        phase = 'word';
        continue;
      }
      pos++;
      ch = line[pos];
    }
    word += ch;
  }
  return { rest: '', flags };
}
