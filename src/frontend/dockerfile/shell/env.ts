import type { EnvLookup } from './types.js';

/**
 * Build an {@link EnvLookup} from `KEY=value` strings or a Map. With strings, the last entry for a key wins and an
 * entry without `=` sets the key to `''`. Names are case-sensitive (Linux semantics).
 *
 * @example
 * const env = envLookupFrom(['A=1', 'B', 'A=2']);
 * env('A'); // '2'
 * env('B'); // ''
 * env('C'); // undefined
 */
export function envLookupFrom(env: Iterable<string> | ReadonlyMap<string, string>): EnvLookup {
  if (isMap(env)) {
    const copy = new Map<string, string>(env);
    return (name) => copy.get(name);
  }
  const values = new Map<string, string>();
  for (const entry of env) {
    const eq = entry.indexOf('=');
    if (eq < 0) values.set(entry, '');
    else values.set(entry.slice(0, eq), entry.slice(eq + 1));
  }
  return (name) => values.get(name);
}

function isMap(env: Iterable<string> | ReadonlyMap<string, string>): env is ReadonlyMap<string, string> {
  return typeof (env as Partial<ReadonlyMap<string, string>>).get === 'function';
}
