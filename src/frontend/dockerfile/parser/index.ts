/**
 * Dockerfile parser: text to BuildKit-shaped syntax tree. Pure functions, no I/O.
 */
export { parse } from './parser.js';
export { dump } from './dump.js';
export { detectSyntax, findDirective, parseDirectives } from './directives.js';
export type { Directive, DirectiveLookup } from './directives.js';
export { parseHeredocWord, heredocsFromLine, chompHeredocContent } from './heredoc.js';
export { parseWords, parseJsonArray } from './line-parsers.js';
export { quoteGo } from './text.js';
export type { Directives, Heredoc, Node, ParseOptions, ParseResult, Warning } from './types.js';
