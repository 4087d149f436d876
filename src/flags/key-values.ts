import { BuildError, type ErrorCode } from '../errors/index.js';

/**
 * `a=1,b=x=y` → `{ a: '1', b: 'x=y' }`: the comma-separated key=value lists of `--output`, `--secret`,
 * `--cache-to` and `--cache-from`. Keys are trimmed, values kept as written. A part without `=` is refused with
 * `code` (ERR_KILN_ARGUMENT unless the caller's table has a better one).
 *
 * @example
 * parseKeyValues('type=oci,dest=img.tar', '--output') // { type: 'oci', dest: 'img.tar' }
 */
export function parseKeyValues(spec: string, flag: string, code: ErrorCode = 'ERR_KILN_ARGUMENT'): Record<string, string> {
  const out: Record<string, string> = {};
  for (const part of spec.split(',')) {
    const eq = part.indexOf('=');
    if (eq < 0) throw new BuildError(code, `${flag}: expected key=value in "${spec}"`);
    out[part.slice(0, eq).trim()] = part.slice(eq + 1);
  }
  return out;
}

/**
 * `KEY=VALUE` sets KEY; a bare `KEY` takes its value from `env` and is left out when `env` has none — as
 * `--build-arg` and `--build-env` read them.
 *
 * @example
 * parseAssignments(['A=1', 'HOME'], { HOME: '/root' }) // { A: '1', HOME: '/root' }
 */
export function parseAssignments(list: readonly string[], env: Readonly<Record<string, string | undefined>> = process.env): Record<string, string> {
  const out: Record<string, string> = {};
  for (const a of list) {
    const eq = a.indexOf('=');
    if (eq >= 0) out[a.slice(0, eq)] = a.slice(eq + 1);
    else if (env[a] !== undefined) out[a] = env[a];
  }
  return out;
}
