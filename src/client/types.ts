import type { ManifestEntry } from '../service/index.js';

/** One entry of a context manifest: the service's own type. */
export type ContextManifestEntry = ManifestEntry;

/** A step of a build as the service reports it. */
export interface RemoteStep {
  name: string;
  cached: boolean;
  durationMs: number;
  missReason?: string;
}

export interface RemoteBuild {
  id: string;
  status: 'queued' | 'running' | 'success' | 'failed' | 'cancelled' | 'interrupted';
  template: string | null;
  created: number;
  started: number | null;
  finished: number | null;
  error: string | null;
  result: { name: string; tag: string | null; digest: string; configDigest: string; durationMs: number; steps: RemoteStep[] } | null;
}

export interface RemoteTemplateTag {
  tag: string;
  digest: string;
  buildId: string;
  created: number;
  updated: number;
}

export interface RemoteTemplate {
  name: string;
  tags: RemoteTemplateTag[];
}

export interface RemoteTemplateDetail extends RemoteTemplate {
  digest: string;
  size: number;
  created: number;
  startCmd: string[] | null;
  readyCheck: unknown;
  steps: RemoteStep[];
  lastBuild: { id: string; status: string; finished: number | null } | null;
}

/** What POST /v1/builds takes, without the context (the client adds the manifest it computed). */
export interface RemoteBuildSpec {
  name?: string;
  template?: { base: unknown; steps: unknown[] };
  dockerfile?: string;
  buildArgs?: Record<string, string>;
  target?: string;
  noCache?: boolean;
  noCacheFilter?: string[];
  network?: 'default' | 'none';
  ignorePatterns?: string[];
}

/** One line of a build's event stream (the lines of `--progress=json`). */
export type RemoteEvent = { type: string; [k: string]: unknown };
