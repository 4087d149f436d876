/**
 * BuildKit's Node.Dump: the s-expression form used by the parser conformance corpus.
 */
import { quoteGo, trimSpace } from './text.js';
import type { Node } from './types.js';

/** Go's `%q` of a []string: `["a" "b"]`. */
function quoteList(items: string[]): string {
  return `[${items.map(quoteGo).join(' ')}]`;
}

/**
 * Print a node as BuildKit's Dump does. For the root this is one `(instruction args...)` per line,
 * without a final newline.
 * @example dump(parse('FROM alpine\n').ast) // '(from "alpine")'
 */
export function dump(node: Node): string {
  let out = node.value.toLowerCase();
  if (node.flags.length > 0) out += ' ' + quoteList(node.flags);
  for (const child of node.children) out += '(' + dump(child) + ')\n';
  for (let n = node.next; n; n = n.next) {
    out += ' ' + (n.children.length > 0 ? dump(n) : quoteGo(n.value));
  }
  return trimSpace(out);
}
