/** One build of the history (`builds` table). */
export interface BuildRecord {
  id: string;
  started: number;
  finished: number | null;
  /** `interrupted`: stopped by a signal, or its process died (marked at the next start) */
  status: 'running' | 'success' | 'failed' | 'interrupted';
  target: string;
  context: string;
  dockerfile: string;
  args: Record<string, string>;
  tags: string[];
  imageDigest: string | null;
  steps: Array<Record<string, unknown>>;
  error: string | null;
  /** `pid:starttime` of the process running the build (null in records from before owners were kept) */
  owner?: string | null;
}

/** Builds and their history. */
export interface BuildRepo {
  /** insert, or update the outcome (finished, status, image, steps, error) of a recorded build */
  putBuild(b: BuildRecord): void;
  /** Builds still marked running, with the process that owns each. */
  listRunningBuilds(): Array<{ id: string; owner: string | null }>;
  /** Set a build's final status without rewriting its steps (a small write, for a full disk or a dead process). */
  finishBuildRecord(b: { id: string; status: BuildRecord['status']; finished: number; error: string | null }): void;
  /** newest first */
  listBuilds(): BuildRecord[];
  /** newest first, id and status only (what history trimming needs, without reading every build's steps) */
  listBuildStatuses(): Array<Pick<BuildRecord, 'id' | 'status'>>;
  /** by id or id prefix (the newest match) */
  getBuild(id: string): BuildRecord | undefined;
  deleteBuild(id: string): void;
}
