import path from 'node:path';
import { normalizeRef, openState, runBuild } from '../engine/index.js';
import type { ProgressEvent, ProgressSink } from '../progress/index.js';
import { prepareTemplateBuild } from './prepare.js';
import type { BuildInfo, BuildOptions, TemplateData } from './types.js';

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
      if (e.type === 'log') {
        const entry = { step: e.name, stream: e.stream, message: e.data, at: new Date(e.at) };
        opts.onLog?.(entry);
        opts.onBuildLogs?.(entry);
        return;
      }
      if (e.type === 'info') return;
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
export async function buildTemplateData(data: TemplateData, opts: BuildOptions = {}): Promise<BuildInfo> {
  const contextDir = path.resolve(opts.contextPath ?? data.defaultContext ?? process.cwd());
  const prepared = await prepareTemplateBuild(data, { ...(opts.env ? { env: opts.env } : {}), ...(opts.caBundle ? { caBundle: opts.caBundle } : {}) });
  const state = await openState(opts.root ? { root: opts.root } : {});
  try {
    const tags = [...(opts.name ? [opts.name] : []), ...(opts.tags ?? [])];
    const r = await runBuild({
      state,
      contextDir,
      dockerfileText: prepared.dockerfileText,
      tags,
      buildArgs: {},
      noCache: opts.skipCache === true,
      noCacheLines: prepared.noCacheLines,
      secrets: prepared.secrets,
      progress: callbackProgress(opts),
      ...(opts.ignorePatterns ? { ignorePatterns: opts.ignorePatterns } : {}),
      ...(opts.signal ? { signal: opts.signal } : {}),
      ...(opts.cacheRegistry ? { cacheRegistry: opts.cacheRegistry } : {}),
    });
    return {
      name: opts.name ? normalizeRef(opts.name) : '',
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
    for (const img of state.db.listImages()) {
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
    const names = state.db.listImages().map((i) => i.name).filter((n) => (exact ? n === normalizeRef(name) : n.slice(0, n.lastIndexOf(':')) === name));
    for (const n of names) state.db.deleteImage(n);
    return names.length > 0;
  } finally {
    state.close();
  }
}
