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
