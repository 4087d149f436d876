import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { BuildError } from '../errors/index.js';
import type { SecretSource, StartCheck } from '../graph/index.js';
import type { ProgramStep } from '../frontend/dockerfile/convert/index.js';
import { buildEnvSecretId, CA_BUNDLE_ENV, CA_BUNDLE_SECRET, CA_BUNDLE_TARGET, renderTemplate, type RenderedTemplate } from './render.js';
import { readyLabel } from './ready.js';
import type { ReadyCheck, TemplateData } from './types.js';

/**
 * What the engine needs to build a template: its base as Dockerfile text and its steps, each with the caller's file
 * and line and whether it always runs (`skipCache()`), which the conversion turns into vertices; the build-env secrets.
 */
export interface PreparedTemplateBuild {
  /** the whole template rendered as a Dockerfile (what `toDockerfile()` shows; not what the engine parses) */
  dockerfileText: string;
  /** the base alone (a FROM line or the given Dockerfile): the engine's Dockerfile text */
  baseText: string;
  /** the steps after the base, as the conversion takes them */
  steps: ProgramStep[];
  /** secrets carrying build-env values and the CA bundle */
  secrets: SecretSource[];
  /** the template's start command and ready check, proven at the end of the build */
  startCheck?: StartCheck;
  /** removes the temporary secret files */
  cleanup(): Promise<void>;
}

/** Options of {@link prepareTemplateBuild}. */
export interface PrepareOptions {
  /** build-time variables (see BuildOptions.env) */
  env?: Record<string, string>;
  /** CA bundle file on this machine */
  caBundle?: string;
  /** how long the start command has to pass its ready check (default 60 s) */
  readyTimeoutMs?: number;
  /** CPUs and memory (MiB) for the start check's container (E2B's `cpuCount` / `memoryMB`) */
  cpuCount?: number;
  memoryMB?: number;
  signal?: AbortSignal;
}

/** The start check of a template: its last start command and ready check (a later `setReadyCmd` replaces it). */
export function templateStartCheck(data: TemplateData, opts: PrepareOptions = {}): StartCheck | undefined {
  let cmd: string | string[] | undefined;
  let ready: ReadyCheck | undefined;
  let any = false;
  for (const s of data.steps) {
    if (s.type === 'setStartCmd') {
      cmd = s.cmd;
      ready = s.ready;
      any = true;
    } else if (s.type === 'setReadyCmd') {
      ready = s.ready;
      any = true;
    }
  }
  if (!any) return undefined;
  for (const [k, v] of [['readyTimeoutMs', opts.readyTimeoutMs], ['cpuCount', opts.cpuCount], ['memoryMB', opts.memoryMB]] as const) {
    if (v !== undefined && !(Number.isFinite(v) && v > 0)) throw new BuildError('ERR_KILN_ARGUMENT', `${k} must be a positive number, got ${v}`);
  }
  return {
    ...(cmd !== undefined ? { cmd } : {}),
    ...(ready ? { readyCmd: ready.cmd } : {}),
    label: readyLabel(ready),
    ...(opts.readyTimeoutMs !== undefined ? { timeoutMs: opts.readyTimeoutMs } : {}),
    ...(opts.cpuCount !== undefined ? { cpuCount: opts.cpuCount } : {}),
    ...(opts.memoryMB !== undefined ? { memoryMB: opts.memoryMB } : {}),
  };
}

/**
 * Render a template for the engine. Build-env values go into temporary secret files (mode 0600) that the RUN steps
 * read through `--mount=type=secret,env=NAME`; the caller runs the build, then `cleanup()`.
 *
 * @example
 * const p = await prepareTemplateBuild(data, { env: { PIP_INDEX_URL: 'http://127.0.0.1:8080/simple/' } });
 * try { await runBuild({ ...req, dockerfileText: p.baseText, steps: p.steps, secrets: p.secrets }); }
 * finally { await p.cleanup(); }
 */
export async function prepareTemplateBuild(data: TemplateData, opts: PrepareOptions = {}): Promise<PreparedTemplateBuild> {
  const env: Record<string, string> = { ...(opts.env ?? {}) };
  for (const k of Object.keys(env)) {
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(k)) throw new BuildError('ERR_KILN_ARGUMENT', `build env: "${k}" is not a valid variable name`);
  }
  if (opts.caBundle) for (const k of CA_BUNDLE_ENV) env[k] ??= CA_BUNDLE_TARGET;
  const deref = data.steps.find((s) => s.type === 'copy' && s.resolveSymlinks);
  if (deref) {
    throw new BuildError('ERR_KILN_NOT_SUPPORTED', 'copy({ resolveSymlinks: true }) is not supported yet: links inside copied folders are copied as links', {
      hint: 'copy the files the links point to instead, or leave resolveSymlinks unset',
    });
  }
  const names = Object.keys(env).sort();
  const rendered = renderTemplate(data, { buildEnv: names, caBundle: !!opts.caBundle });
  const steps = templateSteps(data, rendered);
  const secrets: SecretSource[] = [];
  let dir: string | undefined;
  if (names.length > 0) {
    dir = await mkdtemp(path.join(os.tmpdir(), 'kiln-build-env-'));
    for (const k of names) {
      const file = path.join(dir, k);
      await writeFile(file, env[k]!, { mode: 0o600 });
      secrets.push({ id: buildEnvSecretId(k), file });
    }
  }
  if (opts.caBundle) secrets.push({ id: CA_BUNDLE_SECRET, file: path.resolve(opts.caBundle) });
  const startCheck = templateStartCheck(data, opts);
  return {
    dockerfileText: rendered.text,
    baseText: rendered.base,
    steps,
    secrets,
    ...(startCheck ? { startCheck } : {}),
    cleanup: async () => {
      if (dir) await rm(dir, { recursive: true, force: true });
    },
  };
}


/** Each template step as the conversion takes it: its typed instructions (at the caller's file and line), `skipCache()`. */
export function templateSteps(data: TemplateData, rendered: RenderedTemplate): ProgramStep[] {
  return data.steps.map((s, i) => ({
    commands: rendered.steps[i]!.commands,
    ...(s.skipCache ? { noCache: true } : {}),
  }));
}
