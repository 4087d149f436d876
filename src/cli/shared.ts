import { BuildError } from '../errors/index.js';
import type { State } from '../engine/index.js';

/** What every command gets: the lazily opened state directory. */
export interface CliContext {
  getState(): Promise<State>;
  /** `--root DIR` as given */
  root?: string;
  /** `--host URL` (before the command name): build on / talk to a kiln serve */
  host?: string;
}

export const collect = (v: string, prev: string[]): string[] => [...prev, v];

export function parseKv(s: string, flag: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const part of s.split(',')) {
    const eq = part.indexOf('=');
    if (eq < 0) throw new BuildError('ERR_KILN_ARGUMENT', `${flag}: expected key=value in "${s}"`);
    out[part.slice(0, eq).trim()] = part.slice(eq + 1);
  }
  return out;
}

export function formatSize(n: number): string {
  const u = ['B', 'kB', 'MB', 'GB', 'TB'];
  let i = 0;
  let v = n;
  while (v >= 1000 && i < u.length - 1) {
    v /= 1000;
    i++;
  }
  return `${i === 0 ? v : v.toFixed(v < 10 ? 2 : 1)}${u[i]}`;
}
