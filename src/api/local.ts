import path from 'node:path';
import { loadLocalImage, normalizeRef, openState, runBuild } from '../engine/index.js';
import type { ProgressEvent, ProgressSink } from '../progress/index.js';
import { BuildError, isNotFound } from '../errors/index.js';
import { parseRegistryRef, type RegistryOptions } from '../registry/index.js';
import { logEntry, prepareTemplateBuild, type BuildInfo, type BuildOptions, type TemplateBackend, type TemplateData } from '../sdk/index.js';

/** A progress sink that forwards to the SDK's onLog / onProgress callbacks. */
function callbackProgress(opts: BuildOptions): ProgressSink {
  let total = 0;
  let completed = 0;
  return {
    setTotal: (n) => {
      total = n;
    },
    finish: () => undefined,
    event: (e: ProgressEvent) => {
      const logs = opts.onBuildLogs;
      if (e.type === 'log') {
        opts.onLog?.({ step: e.name, stream: e.stream, message: e.data, at: new Date(e.at) });
        logs?.(logEntry('info', e.data, new Date(e.at)));
        return;
      }
      if (e.type === 'info') {
        logs?.(logEntry(/^\[?warning/i.test(e.message) ? 'warn' : 'info', e.message, new Date(e.at)));
        return;
      }
      if (logs) {
        const word = e.type === 'step-start' ? 'start' : e.type === 'step-cached' ? 'CACHED' : e.type === 'step-done' ? `done in ${e.durationMs} ms` : `failed: ${e.error}`;
        logs(logEntry(e.type === 'step-error' ? 'error' : 'info', `${e.name}: ${word}`, new Date(e.at)));
      }
      if (e.type === 'step-cached' || e.type === 'step-done') completed++;
      const type = e.type === 'step-start' ? 'start' : e.type === 'step-cached' ? 'cached' : e.type === 'step-done' ? 'done' : 'error';
      opts.onProgress?.({
        type,
        step: e.name,
        completed,
        total,
        ...(e.type === 'step-done' ? { durationMs: e.durationMs } : {}),
        ...(e.type === 'step-error' ? { error: e.error } : {}),
      });
    },
  };
}

/** Build template data with the embedded engine (what `Template.build` runs). */
export async function buildTemplateData(data: TemplateData, given: BuildOptions = {}): Promise<BuildInfo> {
  const opts: BuildOptions = { ...given, ...(given.name === undefined && given.alias !== undefined ? { name: given.alias } : {}) };
  const contextDir = path.resolve(opts.contextPath ?? data.defaultContext ?? process.cwd());
  const prepared = await prepareTemplateBuild(data, {
    ...(opts.env ? { env: opts.env } : {}),
    ...(opts.caBundle ? { caBundle: opts.caBundle } : {}),
    ...(opts.readyTimeoutMs !== undefined ? { readyTimeoutMs: opts.readyTimeoutMs } : {}),
    ...(opts.cpuCount !== undefined ? { cpuCount: opts.cpuCount } : {}),
    ...(opts.memoryMB !== undefined ? { memoryMB: opts.memoryMB } : {}),
  });
  const state = await openState(opts.root ? { root: opts.root } : {});
  try {
    const tags = [...(opts.name ? [opts.name] : []), ...(opts.tags ?? [])];
    const r = await runBuild({
      state,
      contextDir,
      dockerfileText: prepared.baseText,
      steps: prepared.steps,
      tags,
      buildArgs: {},
      noCache: opts.skipCache === true,
      secrets: prepared.secrets,
      ...(prepared.startCheck ? { startCheck: prepared.startCheck } : {}),
      progress: callbackProgress(opts),
      ...(opts.ignorePatterns ? { ignorePatterns: opts.ignorePatterns } : {}),
      ...(opts.signal ? { signal: opts.signal } : {}),
      ...(opts.cacheRegistry ? { cacheRegistry: opts.cacheRegistry } : {}),
      ...baseRegistryOptions(data),
    });
    const name = opts.name ? normalizeRef(opts.name) : '';
    return {
      name,
      alias: name,
      templateId: r.imageDigest,
      buildId: r.buildId,
      digest: r.imageDigest,
      durationMs: r.durationMs,
      steps: r.steps.map((s) => ({ name: s.name, cached: s.cached, durationMs: s.durationMs })),
    };
  } finally {
    state.close();
    await prepared.cleanup();
  }
}

/** The local image store's names as templates (`Template.list` without a service). */
export async function localTemplates(root?: string): Promise<Array<{ name: string; tags: Array<{ tag: string; digest: string }> }>> {
  const state = await openState(root ? { root, cleanup: false } : { cleanup: false });
  try {
    const byName = new Map<string, Array<{ tag: string; digest: string }>>();
    for (const img of state.db.images.listImages()) {
      if (img.name.includes('@')) continue;
      const colon = img.name.lastIndexOf(':');
      const name = img.name.slice(0, colon);
      byName.set(name, [...(byName.get(name) ?? []), { tag: img.name.slice(colon + 1), digest: img.manifest }]);
    }
    return [...byName.entries()].map(([name, tags]) => ({ name, tags }));
  } finally {
    state.close();
  }
}

/** `Template.delete` without a service: untag NAME (every tag) or NAME:TAG in the local store. */
export async function deleteLocalTemplate(name: string, root?: string): Promise<boolean> {
  const state = await openState(root ? { root, cleanup: false } : { cleanup: false });
  try {
    const exact = name.includes(':') && !name.endsWith(']');
    const names = state.db.images.listImages().map((i) => i.name).filter((n) => (exact ? n === normalizeRef(name) : n.slice(0, n.lastIndexOf(':')) === name));
    for (const n of names) state.db.images.deleteImage(n);
    return names.length > 0;
  } finally {
    state.close();
  }
}

/**
 * The base image's credentials (`fromImage(ref, credentials)`, `fromGCPRegistry`) as the pull's credentials for its
 * registry host, so a private base is pulled with them. ECR needs a token from AWS's API, which kiln does not call.
 */
function baseRegistryOptions(data: TemplateData): { registry?: RegistryOptions } {
  if (data.base.type !== 'image') return {};
  if (data.base.aws) {
    throw new BuildError('ERR_KILN_NOT_SUPPORTED', `fromAWSRegistry("${data.base.ref}"): kiln cannot get an ECR token (that takes AWS's GetAuthorizationToken API)`, {
      hint: 'run `aws ecr get-login-password | kiln login --username AWS --password-stdin HOST` (or docker login) and use fromImage(ref); or kiln pull the image first',
    });
  }
  if (!data.base.credentials) return {};
  const ref = parseRegistryRef(data.base.ref);
  return { registry: { credentials: { [ref.host]: { username: data.base.credentials.username, password: data.base.credentials.password } } } };
}

/** Is an image of this name in the local store (Template.exists)? */
export async function imageExists(name: string, root?: string): Promise<boolean> {
  const state = await openState(root ? { root, cleanup: false } : { cleanup: false });
  try {
    await loadLocalImage(state, name);
    return true;
  } catch (err) {
    if (isNotFound(err)) return false;
    throw err;
  } finally {
    state.close();
  }
}

/** This machine's engine and image store under `root` (default the state root), as the SDK's backend. */
export function localBackend(root?: string): TemplateBackend {
  return {
    build: (data, opts) => buildTemplateData(data, opts),
    exists: (name) => imageExists(name, root),
    list: () => localTemplates(root),
    delete: (name) => deleteLocalTemplate(name, root),
  };
}
