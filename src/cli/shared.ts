import type { State } from '../engine/index.js';

/** What every command gets: the lazily opened state directory. */
export interface CliContext {
  getState(): Promise<State>;
}

export const collect = (v: string, prev: string[]): string[] => [...prev, v];
