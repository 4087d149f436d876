import path from 'node:path';
import { BuildError } from '../errors/index.js';
import { defaultRoot } from '../engine/index.js';
import { digestCacheFileFor, KilnClient, remoteTarget, runRemoteBuild, type RemoteBuild, type RemoteEvent, type RemoteTemplate } from '../client/index.js';
import {
  logEntry, templateReads, type BuildInfo, type BuildLogEntry, type BuildOptions, type BuildProgressEvent, type BuildStatus, type RemoteOptions,
  type TemplateBackend, type TemplateData,
} from '../sdk/index.js';

/** Where a remote call goes: `apiKey`/`baseUrl` given, or `KILN_API_KEY`/`KILN_HOST` set; undefined: local. */
export function remoteOf(opts: { apiKey?: string; baseUrl?: string } = {}): { baseUrl: string; apiKey?: string } | undefined {
  return remoteTarget({ ...(opts.apiKey ? { apiKey: opts.apiKey } : {}), ...(opts.baseUrl ? { baseUrl: opts.baseUrl } : {}) });
}

function eventCallbacks(opts: BuildOptions): (e: RemoteEvent) => void {
  let total = 0;
  let completed = 0;
  return (e) => {
    if (e.type === 'total') total = Number(e.steps);
    else if (e.type === 'log') {
      const entry: BuildLogEntry = { step: String(e.name), stream: e.stream === 'stderr' ? 'stderr' : 'stdout', message: String(e.data), at: new Date(Number(e.at)) };
      opts.onLog?.(entry);
      opts.onBuildLogs?.(logEntry(entry.stream === 'stderr' ? 'warn' : 'info', entry.message, entry.at));
    } else if (e.type === 'step-start' || e.type === 'step-cached' || e.type === 'step-done' || e.type === 'step-error') {
      if (e.type === 'step-cached' || e.type === 'step-done') completed++;
      const type: BuildProgressEvent['type'] = e.type === 'step-start' ? 'start' : e.type === 'step-cached' ? 'cached' : e.type === 'step-done' ? 'done' : 'error';
      opts.onProgress?.({ type, step: String(e.name), completed, total, ...(e.type === 'step-done' ? { durationMs: Number(e.durationMs) } : {}), ...(e.type === 'step-error' ? { error: String(e.error) } : {}) });
    }
  };
}

function infoOf(b: RemoteBuild, upload?: { files: number; bytes: number }): BuildInfo {
  const r = b.result!;
  const name = r.name ? `${r.name}:${r.tag ?? 'latest'}` : '';
  return {
    name,
    alias: name,
    templateId: r.digest,
    buildId: b.id,
    digest: r.digest,
    durationMs: r.durationMs,
    steps: r.steps.map((s) => ({ name: s.name, cached: s.cached, durationMs: s.durationMs })),
    remote: { buildId: b.id, ...(upload ? { uploadedFiles: upload.files, uploadedBytes: upload.bytes } : {}) },
  };
}

async function withClient<T>(target: { baseUrl: string; apiKey?: string }, fn: (c: KilnClient) => Promise<T>): Promise<T> {
  const c = new KilnClient(target);
  try {
    return await fn(c);
  } finally {
    c.close();
  }
}

/** `Template.build` through the service: upload what the copy() steps read (only what the team lacks), build, follow. */
export async function buildRemote(data: TemplateData, opts: BuildOptions, target: { baseUrl: string; apiKey?: string }, background = false): Promise<BuildInfo & { buildId?: string }> {
  if (opts.tags?.length) throw new BuildError('ERR_KILN_NOT_SUPPORTED', 'remote builds take one name (NAME or NAME:TAG); tags are not supported yet');
  if (opts.env || opts.caBundle || opts.cacheRegistry) throw new BuildError('ERR_KILN_NOT_SUPPORTED', 'env, caBundle and cacheRegistry are set on the server for remote builds (kiln serve --ca-bundle)');
  const contextDir = path.resolve(opts.contextPath ?? data.defaultContext ?? process.cwd());
  const { defaultContext: _dc, ...template } = data;
  return withClient(target, async (client) => {
    const out = await runRemoteBuild({
      client, contextDir, include: templateReads(data), digestCacheFile: digestCacheFileFor(opts.root ?? defaultRoot(), contextDir),
      spec: { template, ...(opts.name ? { name: opts.name } : {}), ...(opts.skipCache ? { noCache: true } : {}), ...(opts.ignorePatterns ? { ignorePatterns: opts.ignorePatterns } : {}) },
      onEvent: eventCallbacks(opts), background, cancelOnAbort: true, ...(opts.signal ? { signal: opts.signal } : {}),
    });
    if (background) return { name: opts.name ?? '', alias: opts.name ?? '', templateId: '', digest: '', durationMs: 0, steps: [], buildId: out.build.id, remote: { buildId: out.build.id, uploadedFiles: out.upload.files, uploadedBytes: out.upload.bytes } };
    return infoOf(out.build, out.upload);
  });
}

export function getBuildStatusRemote(buildId: string, target: { baseUrl: string; apiKey?: string }): Promise<BuildStatus> {
  return withClient(target, async (c) => {
    const b = await c.getBuild(buildId);
    const status: BuildStatus['status'] = b.status === 'success' ? 'ready' : b.status === 'queued' || b.status === 'running' ? 'building' : 'error';
    return { buildId: b.id, status, logEntries: [], ...(b.error ? { reason: b.error } : status === 'error' ? { reason: `build ${b.status}` } : {}) };
  });
}

export function listRemote(target: { baseUrl: string; apiKey?: string }): Promise<RemoteTemplate[]> {
  return withClient(target, (c) => c.listTemplates());
}

export function existsRemote(name: string, target: { baseUrl: string; apiKey?: string }): Promise<boolean> {
  return withClient(target, async (c) => {
    try {
      await c.getTemplate(name);
      return true;
    } catch (err) {
      if (err instanceof BuildError && err.kind === 'not-found') return false;
      throw err;
    }
  });
}

export function deleteRemote(name: string, target: { baseUrl: string; apiKey?: string }): Promise<boolean> {
  return withClient(target, async (c) => {
    try {
      return (await c.deleteTemplate(name)).deleted > 0;
    } catch (err) {
      if (err instanceof BuildError && err.kind === 'not-found') return false;
      throw err;
    }
  });
}

/** The kiln build service `opts` names (or KILN_API_KEY / KILN_HOST), as the SDK's backend. */
export function remoteBackend(opts: RemoteOptions): TemplateBackend {
  const target = remoteOf(opts);
  if (!target) throw new Error('remoteBackend: no service is named (apiKey, baseUrl, KILN_API_KEY or KILN_HOST)');
  return {
    build: (data, o) => buildRemote(data, o, target),
    start: (data, o) => buildRemote(data, o, target, true),
    status: (buildId) => getBuildStatusRemote(buildId, target),
    exists: (name) => existsRemote(name, target),
    list: () => listRemote(target),
    delete: (name) => deleteRemote(name, target),
  };
}
