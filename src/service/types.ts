/** Per-team limits (absent: the server's defaults). */
export interface TeamLimits {
  /** builds of this team running at once (the rest wait in order) */
  concurrentBuilds?: number;
  /** bytes of context a single build may upload */
  uploadBytesPerBuild?: number;
  /** bytes the team's state root may keep; its automatic GC (after each build) prunes down to this */
  storedBytes?: number;
}

export interface Team {
  id: string;
  name: string;
  created: number;
  limits: TeamLimits;
}

export interface ApiKeyRecord {
  id: string;
  teamId: string;
  team: string;
  created: number;
  revoked: number | null;
}

export interface TemplateRecord {
  teamId: string;
  name: string;
  tag: string;
  digest: string;
  buildId: string;
  created: number;
  updated: number;
}

export type ServiceBuildStatus = 'queued' | 'running' | 'success' | 'failed' | 'cancelled' | 'interrupted';

export interface ServiceBuild {
  id: string;
  teamId: string;
  status: ServiceBuildStatus;
  request: unknown;
  result: unknown;
  error: string | null;
  template: string | null;
  /** the id of the API key whose request created the build (null: made before it was recorded, or the key is gone) */
  startedBy: string | null;
  created: number;
  started: number | null;
  finished: number | null;
}

/** One entry of a context manifest: what a build reads, as the client describes it. */
export interface ManifestEntry {
  /** relative, '/'-separated */
  path: string;
  type: 'file' | 'dir' | 'symlink';
  /** permission bits (incl. setuid/setgid/sticky) */
  mode: number;
  /** files: size and sha256 (`sha256:<hex>`) */
  size?: number;
  digest?: string;
  /** symlinks: the link text */
  target?: string;
  /** files: the earlier entry this one is a hardlink of */
  linkOf?: string;
}

/**
 * Where a stored build request keeps its base image's sealed registry credentials (src/server/credentials.ts): both
 * stores drop this field when the build finishes, so the ciphertext lives only while the build may still run.
 */
export const SEALED_CREDENTIALS_PATH = ['template', 'base', 'sealedCredentials'] as const;

/** One metered quantity (build seconds, bytes, ...). */
export interface UsageRecord {
  teamId: string;
  kind: string;
  quantity: number;
  buildId?: string;
}

/**
 * The service's records, one interface over both databases: SQLite (`ROOT/service.db`, the one-machine default) and
 * PostgreSQL (`kiln serve --database`, shared by every API node and worker). Times are milliseconds since the epoch;
 * keys are stored only as their sha256; a build of another team is not found.
 */
export interface ServiceStore {
  readonly kind: 'sqlite' | 'postgres';
  createTeam(name: string, limits?: TeamLimits): Promise<Team>;
  getTeam(id: string): Promise<Team | undefined>;
  getTeamByName(name: string): Promise<Team | undefined>;
  listTeams(): Promise<Team[]>;
  setTeamLimits(id: string, limits: TeamLimits): Promise<void>;
  /** a new key for the team: returned once, stored only as its sha256 */
  createKey(teamId: string): Promise<{ id: string; key: string }>;
  listKeys(teamId?: string): Promise<ApiKeyRecord[]>;
  revokeKey(id: string): Promise<boolean>;
  /** the team of a valid (known, not revoked) key, else undefined */
  authenticate(key: string): Promise<Team | undefined>;
  putTemplate(rec: Omit<TemplateRecord, 'created' | 'updated'>): Promise<void>;
  listTemplates(teamId: string, name?: string): Promise<TemplateRecord[]>;
  /** delete one tag, or every tag of the template; returns the tags deleted */
  deleteTemplate(teamId: string, name: string, tag?: string): Promise<number>;
  /** a queued build; `createdByKey`: the id of the API key that asked for it */
  createBuild(b: { id: string; teamId: string; request: unknown; template: string | null; createdByKey?: string }): Promise<void>;
  /** mark a build running (on `worker`, when given) */
  setBuildRunning(id: string, worker?: string): Promise<void>;
  /** record a build's end; its request's sealed credentials ({@link SEALED_CREDENTIALS_PATH}) are dropped */
  finishBuild(id: string, status: ServiceBuildStatus, result: unknown, error: string | null): Promise<void>;
  getBuild(teamId: string, id: string): Promise<ServiceBuild | undefined>;
  /** builds in these states, oldest first */
  listBuilds(status: ServiceBuildStatus[]): Promise<ServiceBuild[]>;
  lastBuildOf(teamId: string, template: string): Promise<ServiceBuild | undefined>;
  /** append one event line (its JSON text is kept byte for byte) */
  appendEvent(buildId: string, seq: number, data: string): Promise<void>;
  /** events of a build after `afterSeq`, in order (SSE resumption) */
  eventsAfter(buildId: string, afterSeq: number): Promise<Array<{ seq: number; data: string }>>;
  lastEventSeq(buildId: string): Promise<number>;
  /**
   * Be told (`onChange`) when an event of the build may have been appended by any process (PostgreSQL: LISTEN/NOTIFY,
   * and after a lost listening connection came back). Resolves once listening, with the function that stops it.
   * Absent (SQLite): one process, whose builds hand their lines over live.
   */
  watchEvents?(buildId: string, onChange: () => void): Promise<() => void>;
  addUsage(u: UsageRecord): Promise<void>;
  /** sum of a team's usage of one kind since `sinceMs` (default: all time) */
  usageOf(teamId: string, kind: string, sinceMs?: number): Promise<number>;
  /** sums of a team's usage per kind since `sinceMs` (default: all time); a kind never recorded is absent */
  usageByKind(teamId: string, sinceMs?: number): Promise<Record<string, number>>;
  /** a team's usage of one kind per build (null: not a build's), each with the time of its last row, oldest first */
  usageTimeline(teamId: string, kind: string): Promise<Array<{ buildId: string | null; quantity: number; at: number }>>;
  close(): Promise<void>;
}
