import { createHash } from 'node:crypto';
import path from 'node:path';
import { BuildError } from '../errors/index.js';
import type { KilnClient, UploadReport } from './client.js';
import { computeManifest } from './manifest.js';
import type { RemoteBuild, RemoteBuildSpec, RemoteEvent } from './types.js';

/** Options of {@link runRemoteBuild}. */
export interface RemoteBuildOptions {
  client: KilnClient;
  spec: RemoteBuildSpec;
  contextDir: string;
  /** the context paths the build reads (a template's copy() sources); absent: the whole context */
  include?: string[];
  dockerfilePath?: string;
  /** where to keep the context's digests between runs (see computeManifest) */
  digestCacheFile?: string;
  /** every `--progress=json` line of the build, in order, once */
  onEvent?: (e: RemoteEvent) => void;
  /** started: the build's id (before its events) */
  onStarted?: (b: RemoteBuild) => void;
  signal?: AbortSignal;
  /** on `signal`, cancel the build on the server too (default: only stop following) */
  cancelOnAbort?: boolean;
  /** only start it: do not follow its events */
  background?: boolean;
}

export interface RemoteBuildOutcome {
  build: RemoteBuild;
  upload: UploadReport;
}

/** Manifest → missing digests → streamed uploads → POST /v1/builds → events to the finish line → the build. */
export async function runRemoteBuild(o: RemoteBuildOptions): Promise<RemoteBuildOutcome> {
  const manifest = await computeManifest({ contextDir: o.contextDir, ...(o.include ? { include: o.include } : {}), ...(o.spec.ignorePatterns ? { ignorePatterns: o.spec.ignorePatterns } : {}), ...(o.dockerfilePath ? { dockerfilePath: o.dockerfilePath } : {}), ...(o.digestCacheFile ? { cacheFile: o.digestCacheFile } : {}) });
  const upload = await o.client.upload(manifest, o.signal);
  const started = await o.client.createBuild({ ...o.spec, context: manifest.entries }, o.signal);
  o.onStarted?.(started);
  if (o.background) return { build: started, upload };
  const onAbort = (): void => {
    if (o.cancelOnAbort) void o.client.cancelBuild(started.id).catch(() => undefined);
  };
  o.signal?.addEventListener('abort', onAbort, { once: true });
  try {
    await o.client.follow(started.id, (e) => o.onEvent?.(e), o.signal);
  } finally {
    o.signal?.removeEventListener('abort', onAbort);
  }
  const build = await o.client.getBuild(started.id);
  if (build.status !== 'success') {
    throw new BuildError(build.status === 'cancelled' || build.status === 'interrupted' ? 'ERR_KILN_INTERRUPTED' : 'ERR_KILN_EXEC_FAILED', `remote build ${build.id} ${build.status}: ${build.error ?? 'no error recorded'}`, { details: { buildId: build.id } });
  }
  return { build, upload };
}

/** The digest cache file of a context under a state root: `ROOT/client-digests/<sha256(context path)>.json`. */
export function digestCacheFileFor(root: string, contextDir: string): string {
  return path.join(root, 'client-digests', `${createHash('sha256').update(path.resolve(contextDir)).digest('hex').slice(0, 32)}.json`);
}

/** `KILN_HOST` / `KILN_API_KEY` (or the given values): the service to use, or undefined for a local build. */
export function remoteTarget(opts: { baseUrl?: string; apiKey?: string } = {}): { baseUrl: string; apiKey?: string } | undefined {
  const apiKey = opts.apiKey ?? process.env.KILN_API_KEY;
  const baseUrl = opts.baseUrl ?? process.env.KILN_HOST;
  if (!apiKey && !baseUrl) return undefined;
  return { baseUrl: baseUrl ?? 'http://127.0.0.1:8080', ...(apiKey ? { apiKey } : {}) };
}
