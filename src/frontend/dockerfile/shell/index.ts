/**
 * BuildKit-compatible Dockerfile shell lexer: variable expansion, quote and escape removal, word splitting.
 */
export { createShellLexer } from './lexer.js';
export { envLookupFrom } from './env.js';
export type { EnvLookup, ShellLexer, ShellLexerOptions, WordResult } from './types.js';
/** @internal Exposed for the conformance test of the `#` / `%` / `/` glob dialect. */
export { shellPatternToRegexSource, reverseShellPattern } from './pattern.js';
