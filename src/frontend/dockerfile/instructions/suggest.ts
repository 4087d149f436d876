/**
 * "did you mean X?" hints, as BuildKit's util/suggest: the closest option within edit distance 2.
 * @internal
 */

function levenshtein(a: string, b: string): number {
  const x = Array.from(a);
  const y = Array.from(b);
  let prev = Array.from({ length: y.length + 1 }, (_, j) => j);
  for (let i = 1; i <= x.length; i++) {
    const cur = [i];
    for (let j = 1; j <= y.length; j++) {
      const sub = prev[j - 1] + (x[i - 1] === y[j - 1] ? 0 : 1);
      cur.push(Math.min(prev[j] + 1, cur[j - 1] + 1, sub));
    }
    prev = cur;
  }
  return prev[y.length];
}

function matchCase(value: string, orig: string): string {
  if (orig === orig.toLowerCase()) return value.toLowerCase();
  if (orig === orig.toUpperCase()) return value.toUpperCase();
  return value;
}

/** The closest option to `value`, or undefined when none is close or one matches exactly. */
export function suggest(value: string, options: readonly string[], caseSensitive: boolean): string | undefined {
  const val = caseSensitive ? value : value.toLowerCase();
  let match: string | undefined;
  let best = 3;
  for (const raw of options) {
    const opt = caseSensitive ? raw : raw.toLowerCase();
    if (opt === val) return undefined;
    const d = levenshtein(val, opt);
    if (d < best) {
      best = d;
      match = caseSensitive ? opt : matchCase(opt, value);
    }
  }
  return match;
}

/** `message` plus ` (did you mean X?)` when an option is close. */
export function withSuggestion(message: string, opts: { value: string; options: readonly string[]; caseSensitive: boolean }): string {
  const m = suggest(opts.value, opts.options, opts.caseSensitive);
  return m === undefined ? message : `${message} (did you mean ${m}?)`;
}
