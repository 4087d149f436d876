/** A writable root filesystem being prepared on top of committed snapshots. */
export interface ActiveSnapshot {
  /** the merged view; valid between mount() and unmount() */
  readonly mountpoint: string;
  /** where this step's changes land (overlay upperdir; whiteouts are char 0/0, opaque dirs have an xattr) */
  readonly upperDir: string;
  /** the lower layers' directories, topmost first */
  readonly lowerDirs: string[];
  mount(): Promise<void>;
  unmount(): Promise<void>;
  /** Turn the upper directory into a committed snapshot; returns its id. */
  commit(): Promise<number>;
  /** Unmount if needed and remove everything not committed. */
  release(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}

export interface Snapshotter {
  /** Directory of a committed snapshot. */
  dir(id: number): string;
  /** A new active snapshot over `lowers` (committed snapshot ids, bottom first). */
  prepare(opts: { lowers: number[] }): Promise<ActiveSnapshot>;
  /** A new empty directory that becomes a committed snapshot via `commit` (for unpacking layers). */
  create(): Promise<{ id: number; dir: string; commit(): Promise<number>; abort(): Promise<void> }>;
  remove(id: number): Promise<void>;
  /** Remove snapshots that were never committed (left by a killed build). */
  cleanup(): Promise<void>;
}
