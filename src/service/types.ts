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
