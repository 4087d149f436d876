/**
 * Contract of the Dockerfile shell lexer: `$VAR` / `${VAR...}` expansion, quote and escape removal, and word
 * splitting, as BuildKit's `frontend/dockerfile/shell` does it. RUN text never goes through this lexer.
 */

/** Reads one variable. `undefined` means unset; `''` means set but empty. */
export type EnvLookup = (name: string) => string | undefined;

/** A processed word plus the variables it referenced. */
export interface WordResult {
  /** The word after expansion, with quotes and escapes removed (unless a raw mode keeps them). */
  result: string;
  /** Names referenced that were set (an empty value counts as set). */
  matched: Set<string>;
  /** Names referenced that were unset. */
  unmatched: Set<string>;
}

/** Expands Dockerfile words. Pure: every call is independent and the lexer holds no state between calls. */
export interface ShellLexer {
  /** Process `word` as one word: spaces are kept, quotes and escapes removed. Throws a BuildError on bad syntax. */
  processWord(word: string, env: EnvLookup): string;
  /** Like {@link ShellLexer.processWord}, also reporting which variables were set or unset. */
  processWordWithMatches(word: string, env: EnvLookup): WordResult;
  /**
   * Process `word` and split it into words on unquoted whitespace, after expansion (as EXPOSE and heredoc
   * detection do). Quoted text and escaped spaces do not split; whitespace from an unquoted expansion does.
   */
  processWords(word: string, env: EnvLookup): string[];
}

/** Options of {@link createShellLexer}; the flags mirror the fields of BuildKit's `shell.Lex`. */
export interface ShellLexerOptions {
  /** Escape character, as set by the `# escape=` directive. Default `\`. */
  escapeToken?: '\\' | '`';
  /** Keep `'` and `"` characters in the output (quoting still takes effect). Default false. */
  rawQuotes?: boolean;
  /** Keep escape characters in the output (escaping still takes effect). Default false. */
  rawEscapes?: boolean;
  /** Treat `'` and `"` as ordinary characters. Default false. */
  skipProcessQuotes?: boolean;
  /** Leave references to unset variables as written (`$X`, `${X}`, `${X:-y}`) instead of expanding them. */
  skipUnsetEnv?: boolean;
}
