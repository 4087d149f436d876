/**
 * Linear-time matching of compiled glob patterns (a Thompson NFA simulated over a set of states).
 *
 * The .dockerignore matcher used to hand its patterns to JavaScript's backtracking RegExp engine, where a 12-character
 * pattern such as `*a*a*a*a*a*b` against a 200-character name takes minutes. Here every pattern is a sequence of
 * pieces (one character matching a predicate, a run of such characters, or upstream's optional `(.*\/)?` group); the
 * matcher keeps the set of pattern positions reachable after each input character, so a match costs
 * O(name length × pattern length) whatever the pattern. Input is read by code point, as a `u`-flag RegExp reads it.
 * @internal
 */

/** One piece of a compiled pattern. */
export type GlobPiece =
  /** exactly one code point accepted by `test` */
  | { t: 'one'; test: (cp: number) => boolean }
  /** zero or more code points accepted by `test` */
  | { t: 'many'; test: (cp: number) => boolean }
  /** upstream's `(.*\/)?`: nothing, or any run of code points other than a newline ending in '/' */
  | { t: 'dirs' };

const SLASH = 0x2f;
const NEWLINE = 0x0a;

/** `[^/]` */
export const notSlash = (cp: number): boolean => cp !== SLASH;
/** RegExp `.` as Go's regexp defines it (every code point but a newline). */
export const notNewline = (cp: number): boolean => cp !== NEWLINE;
/** A literal code point. */
export const literal = (c: string): ((cp: number) => boolean) => {
  const want = c.codePointAt(0)!;
  return (cp) => cp === want;
};
/** A `[...]` class over code-point ranges. */
export const inClass = (ranges: ReadonlyArray<readonly [string, string]>, negated: boolean): ((cp: number) => boolean) => {
  const r = ranges.map(([lo, hi]) => [lo.codePointAt(0)!, hi.codePointAt(0)!] as const);
  return (cp) => r.some(([lo, hi]) => cp >= lo && cp <= hi) !== negated;
};

// NFA nodes: a character step, a split (two epsilon edges) or the accepting node.
interface StepNode { k: 'step'; test: (cp: number) => boolean; out: number }
interface SplitNode { k: 'split'; a: number; b: number }
interface MatchNode { k: 'match' }
type Node = StepNode | SplitNode | MatchNode;

/** Compile pieces (matched against the whole input, anchored at both ends) into a test function. */
export function compileLinearGlob(pieces: readonly GlobPiece[]): (input: string) => boolean {
  const nodes: Node[] = [{ k: 'match' }];
  let next = 0;
  for (let i = pieces.length - 1; i >= 0; i--) {
    const p = pieces[i]!;
    if (p.t === 'one') {
      nodes.push({ k: 'step', test: p.test, out: next });
      next = nodes.length - 1;
    } else if (p.t === 'many') {
      const split: SplitNode = { k: 'split', a: -1, b: next };
      nodes.push(split);
      const s = nodes.length - 1;
      nodes.push({ k: 'step', test: p.test, out: s });
      split.a = nodes.length - 1;
      next = s;
    } else {
      // entry: skip the group, or loop over `.` and leave through a '/'
      nodes.push({ k: 'step', test: (cp) => cp === SLASH, out: next });
      const slash = nodes.length - 1;
      const loop: SplitNode = { k: 'split', a: -1, b: slash };
      nodes.push(loop);
      const l = nodes.length - 1;
      nodes.push({ k: 'step', test: notNewline, out: l });
      loop.a = nodes.length - 1;
      nodes.push({ k: 'split', a: l, b: next });
      next = nodes.length - 1;
    }
  }
  const start = next;
  const n = nodes.length;
  return (input) => {
    const mark = new Int32Array(n).fill(-1);
    let cur: number[] = [];
    let nxt: number[] = [];
    const stack: number[] = [];
    const add = (list: number[], id: number, gen: number): void => {
      stack.push(id);
      while (stack.length > 0) {
        const x = stack.pop()!;
        if (mark[x] === gen) continue;
        mark[x] = gen;
        const node = nodes[x]!;
        if (node.k === 'split') {
          stack.push(node.b, node.a);
        } else list.push(x);
      }
    };
    let gen = 0;
    add(cur, start, gen);
    for (const ch of input) {
      if (cur.length === 0) return false;
      const cp = ch.codePointAt(0)!;
      gen++;
      nxt.length = 0;
      for (const id of cur) {
        const node = nodes[id] as StepNode | MatchNode;
        if (node.k === 'step' && node.test(cp)) add(nxt, node.out, gen);
      }
      [cur, nxt] = [nxt, cur];
    }
    return cur.some((id) => nodes[id]!.k === 'match');
  };
}
