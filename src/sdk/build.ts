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
        opts.onLog?.({ step: e.name, stream: e.stream, message: e.data, at: new Date(e.at) });
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
      dockerfileText: prepared.dockerfileText,
      tags,
      buildArgs: {},
      noCache: opts.skipCache === true,
      noCacheLines: prepared.noCacheLines,
      secrets: prepared.secrets,
      ...(prepared.startCheck ? { startCheck: prepared.startCheck } : {}),
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
