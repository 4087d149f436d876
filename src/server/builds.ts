import { randomBytes } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { BuildError, formatUserError, isBuildError } from '../errors/index.js';
import { normalizeRef, runBuild, validateImageName, type BuildResult, type State } from '../engine/index.js';
import type { ProgressEvent, ProgressSink } from '../progress/index.js';
import { prepareTemplateBuild, type TemplateData } from '../sdk/index.js';
import { BuildQueue, type ManifestEntry, type ServiceBuild, type ServiceBuildStatus, type ServiceDb, type Team } from '../service/index.js';
import type { ServerConfig } from './config.js';
import { contextDirFor, materializeContext } from './context.js';
import type { ServerMetrics } from './metrics.js';
import { serverBuildOptions } from './options.js';
import type { TeamSpaces } from './teams.js';

/** A build as `POST /v1/builds` asks for it (validated by the route's schema). */
export interface BuildSpec {
  /** template name, `NAME` or `NAME:TAG` (default tag latest) */
  name?: string;
  template?: { base: Record<string, unknown>; steps: Array<Record<string, unknown>> };
  dockerfile?: string;
  context: ManifestEntry[];
  buildArgs?: Record<string, string>;
  target?: string;
  noCache?: boolean;
  noCacheFilter?: string[];
  network?: 'default' | 'none';
  ignorePatterns?: string[];
}

/** What a finished build returns: the SDK's BuildInfo shape plus the image's details. */
export interface BuildOutcome {
  name: string;
  tag: string | null;
  digest: string;
  configDigest: string;
  durationMs: number;
  steps: Array<{ name: string; cached: boolean; durationMs: number; missReason?: string }>;
}

/** One JSON line of a build's event stream: the `--progress=json` lines, numbered. */
type Listener = (seq: number, data: string) => void;

interface Live {
  seq: number;
  listeners: Set<Listener>;
  controller: AbortController;
  cancelled: boolean;
  shutdown: boolean;
}

/** `NAME[:TAG]` → name and tag, checked against the image-name grammar. */
export function splitTemplateName(n: string): { name: string; tag: string } {
  validateImageName(n, 'name');
  const ref = normalizeRef(n);
  const colon = ref.lastIndexOf(':');
  return { name: ref.slice(0, colon), tag: ref.slice(colon + 1) };
}

/** A progress sink writing the same lines as `--progress=json`, each numbered and kept, to `emit`. */
function recordingSink(emit: (line: Record<string, unknown>) => void): ProgressSink {
  return {
    setTotal: (n) => emit({ type: 'total', steps: n }),
    event: (e: ProgressEvent) => emit(e as unknown as Record<string, unknown>),
    finish: () => undefined,
  };
}

function outcomeOf(r: BuildResult, name: string, tag: string | null): BuildOutcome {
  return {
    name, tag, digest: r.imageDigest, configDigest: r.configDigest, durationMs: r.durationMs,
    steps: r.steps.map((s) => ({ name: s.name, cached: s.cached, durationMs: s.durationMs, ...(s.missReason ? { missReason: s.missReason } : {}) })),
  };
}

/** Builds as resources: queued in order, run with the engine in the team's state root, events kept for replay. */
export class BuildService {
  readonly queue: BuildQueue;
  private readonly live = new Map<string, Live>();
  private accepting = true;

  constructor(private readonly deps: { config: ServerConfig; db: ServiceDb; spaces: TeamSpaces; metrics: ServerMetrics; base: State; log: (line: Record<string, unknown>) => void }) {
    this.queue = new BuildQueue(deps.config.maxBuilds);
  }

  private gauges(): void {
    this.deps.metrics.queueLength.set(this.queue.queued);
    this.deps.metrics.running.set(this.queue.active);
  }

  /**
   * At start: every team's state root is opened (which removes what a killed server left: containers, mounts,
   * temp blobs, uncommitted snapshots); builds it was running are interrupted; queued ones are queued again.
   */
  async recover(): Promise<void> {
    for (const team of this.deps.db.listTeams()) await this.deps.spaces.get(team);
    for (const b of this.deps.db.listBuilds(['running'])) {
      this.deps.db.finishBuild(b.id, 'interrupted', null, 'the server stopped while the build ran');
      this.deps.db.appendEvent(b.id, this.deps.db.lastEventSeq(b.id) + 1, JSON.stringify({ type: 'finish', ok: false, status: 'interrupted', at: Date.now() }));
    }
    for (const b of this.deps.db.listBuilds(['queued'])) {
      const team = this.deps.db.getTeam(b.teamId);
      if (team) this.enqueue(team, b.id, b.request as BuildSpec);
    }
  }

  /** Check and queue a build; returns its record. Refusals are BuildErrors (400 with the field). */
  async submit(team: Team, spec: BuildSpec): Promise<ServiceBuild> {
    if (!this.accepting) throw new BuildError('ERR_KILN_SERVICE_UNAVAILABLE', 'the server is shutting down');
    if ((spec.template ? 1 : 0) + (spec.dockerfile !== undefined ? 1 : 0) !== 1) throw new BuildError('ERR_KILN_SERVICE_REQUEST', 'body: give exactly one of "template" and "dockerfile"');
    if (spec.name !== undefined) splitTemplateName(spec.name);
    const space = await this.deps.spaces.get(team);
    const bytes = spec.context.reduce((n, e) => n + (e.type === 'file' && !e.linkOf ? e.size ?? 0 : 0), 0);
    if (bytes > space.limits.uploadBytesPerBuild) throw new BuildError('ERR_KILN_LIMIT_EXCEEDED', `context: ${bytes} bytes is more than the team's limit of ${space.limits.uploadBytesPerBuild} bytes per build (uploadBytesPerBuild)`);
    const missing = space.uploads.missing(spec.context.flatMap((e) => (e.type === 'file' && e.digest && !e.linkOf ? [e.digest] : [])));
    if (missing.length > 0) throw new BuildError('ERR_KILN_SERVICE_REQUEST', `context: ${missing.length} file(s) not uploaded yet (first: ${missing[0]})`, { details: { missing } });
    const id = `b${Date.now().toString(36)}${randomBytes(6).toString('hex')}`;
    const template = spec.name !== undefined ? splitTemplateName(spec.name).name : null;
    // registry credentials of a template's base are used for this run only, never stored (a build queued again
    // after a restart pulls without them)
    const stored = spec.template?.base && 'credentials' in spec.template.base
      ? { ...spec, template: { ...spec.template, base: { ...spec.template.base, credentials: undefined } } }
      : spec;
    this.deps.db.createBuild({ id, teamId: team.id, request: stored, template });
    this.enqueue(team, id, spec);
    return this.deps.db.getBuild(team.id, id)!;
  }

  private enqueue(team: Team, id: string, spec: BuildSpec): void {
    const live: Live = { seq: this.deps.db.lastEventSeq(id), listeners: new Set(), controller: new AbortController(), cancelled: false, shutdown: false };
    this.live.set(id, live);
    this.queue.submit({ id, teamId: team.id, teamLimit: this.deps.spaces.limitsOf(team).concurrentBuilds, run: () => this.run(team, id, spec, live) });
    this.gauges();
  }

  private emit(id: string, live: Live, line: Record<string, unknown>): void {
    const seq = ++live.seq;
    const data = JSON.stringify(line);
    this.deps.db.appendEvent(id, seq, data);
    for (const l of live.listeners) l(seq, data);
  }

  private async run(team: Team, id: string, spec: BuildSpec, live: Live): Promise<void> {
    const started = Date.now();
    this.deps.db.setBuildRunning(id);
    this.gauges();
    const emit = (line: Record<string, unknown>): void => this.emit(id, live, line);
    let status: ServiceBuildStatus = 'failed';
    let error: string | null = null;
    let outcome: BuildOutcome | null = null;
    let cleanup = async (): Promise<void> => undefined;
    try {
      const space = await this.deps.spaces.get(team);
      await this.deps.spaces.seedBaseImages(space);
      const named = spec.name !== undefined ? splitTemplateName(spec.name) : undefined;
      const contextDir = contextDirFor(space.root, named ? `template:${named.name}` : `build:${id}`);
      if (!named) cleanup = () => fsp.rm(contextDir, { recursive: true, force: true }).then(() => fsp.rm(`${contextDir}.json`, { force: true }));
      await this.withContextLock(contextDir, async () => {
        await materializeContext({ dir: contextDir, entries: spec.context, uploads: space.uploads });
        let dockerfileText = spec.dockerfile ?? '';
        let steps: Awaited<ReturnType<typeof prepareTemplateBuild>>['steps'] = [];
        let secrets: Awaited<ReturnType<typeof prepareTemplateBuild>>['secrets'] = [];
        if (spec.template) {
          const prepared = await prepareTemplateBuild(spec.template as unknown as TemplateData, this.deps.config.caBundle ? { caBundle: this.deps.config.caBundle } : {});
          const prev = cleanup;
          cleanup = async () => { await prepared.cleanup(); await prev(); };
          dockerfileText = prepared.baseText;
          steps = prepared.steps;
          secrets = prepared.secrets;
        }
        const result = await runBuild(serverBuildOptions(this.deps.config, {
          team, state: space.state, contextDir, dockerfileText, dockerfileName: path.join(contextDir, 'Dockerfile'),
          tags: named ? [`${named.name}:${named.tag}`] : [], buildArgs: spec.buildArgs ?? {}, ...(spec.target ? { target: spec.target } : {}),
          noCache: spec.noCache === true, noCacheFilter: spec.noCacheFilter ?? [], steps, secrets, ignorePatterns: spec.ignorePatterns ?? [],
          ...(spec.network === 'none' ? { network: 'none' as const } : {}), maxContextBytes: space.limits.uploadBytesPerBuild,
          progress: recordingSink(emit), signal: live.controller.signal,
        }));
        outcome = outcomeOf(result, named?.name ?? '', named?.tag ?? null);
        if (named) this.deps.db.putTemplate({ teamId: team.id, name: named.name, tag: named.tag, digest: result.imageDigest, buildId: id });
      });
      status = 'success';
    } catch (err) {
      status = live.cancelled ? 'cancelled' : live.shutdown ? 'interrupted' : 'failed';
      error = live.cancelled ? 'cancelled' : formatUserError(err);
      if (!isBuildError(err)) process.stderr.write(`kiln serve: build ${id}: ${err instanceof Error ? err.stack : String(err)}\n`);
    } finally {
      await cleanup().catch(() => undefined);
    }
    const o = outcome as BuildOutcome | null;
    this.deps.db.finishBuild(id, status, o, error);
    emit({ type: 'finish', ok: status === 'success', status, ...(error ? { error } : {}), at: Date.now() });
    this.live.delete(id);
    const cached = o?.steps.filter((s) => s.cached).length ?? 0;
    const total = o?.steps.length ?? 0;
    const m = this.deps.metrics;
    m.builds.inc({ result: status });
    m.stepHits.inc(cached);
    m.stepMisses.inc(total - cached);
    m.buildDuration.observe({ result: status }, (Date.now() - started) / 1000);
    this.gauges();
    this.deps.log({ msg: 'build', team: team.name, teamId: team.id, buildId: id, status, durationMs: Date.now() - started, cachedSteps: cached, totalSteps: total, ...(o ? { digest: o.digest } : {}), ...(error ? { error } : {}) });
  }

  private readonly locks = new Map<string, Promise<void>>();

  /** Builds of the same template share its context folder: one at a time. */
  private async withContextLock(dir: string, fn: () => Promise<void>): Promise<void> {
    const prev = this.locks.get(dir) ?? Promise.resolve();
    let release!: () => void;
    const mine = new Promise<void>((r) => (release = r));
    const chained = prev.then(() => mine);
    this.locks.set(dir, chained);
    await prev;
    try {
      await fn();
    } finally {
      release();
      if (this.locks.get(dir) === chained) this.locks.delete(dir);
    }
  }

  /** Cancel a queued or running build of the team (false: it is not queued or running). */
  cancel(team: Team, id: string): boolean {
    const b = this.deps.db.getBuild(team.id, id);
    const live = this.live.get(id);
    if (!b || !live) return false;
    live.cancelled = true;
    if (this.queue.remove(id)) {
      this.deps.db.finishBuild(id, 'cancelled', null, 'cancelled');
      this.emit(id, live, { type: 'finish', ok: false, status: 'cancelled', error: 'cancelled', at: Date.now() });
      this.live.delete(id);
      this.gauges();
      return true;
    }
    live.controller.abort(new BuildError('ERR_KILN_INTERRUPTED', 'build cancelled'));
    return true;
  }

  /**
   * Follow a build's events after `afterSeq`: stored ones first, then live ones, without a gap or a repeat.
   * `onEvent` gets each line; resolves `true` when the build has finished (its `finish` line was delivered).
   */
  follow(id: string, afterSeq: number, onEvent: Listener, signal: AbortSignal): Promise<void> {
    return new Promise<void>((resolve) => {
      let last = afterSeq;
      let done = false;
      const deliver = (seq: number, data: string): void => {
        if (done || seq <= last) return;
        last = seq;
        onEvent(seq, data);
        if (data.startsWith('{"type":"finish"')) finish();
      };
      const live = this.live.get(id);
      const finish = (): void => {
        done = true;
        live?.listeners.delete(deliver);
        signal.removeEventListener('abort', finish);
        resolve();
      };
      live?.listeners.add(deliver);
      signal.addEventListener('abort', finish);
      for (const e of this.deps.db.eventsAfter(id, afterSeq)) deliver(e.seq, e.data);
      if (!live && !done) finish();
    });
  }

  /** SIGTERM: accept no more builds, let running ones finish within the timeout, then cancel them. */
  async shutdown(timeoutMs: number): Promise<void> {
    this.accepting = false;
    for (const [id, live] of this.live) if (this.queue.remove(id)) this.live.delete(id), live.listeners.clear(); // stays queued in the db: run at next start
    const drained = this.queue.drained();
    const timer = new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), timeoutMs).unref());
    if ((await Promise.race([drained, timer])) === 'timeout') {
      for (const live of this.live.values()) {
        live.shutdown = true;
        live.controller.abort(new BuildError('ERR_KILN_INTERRUPTED', 'the server is shutting down'));
      }
      await drained;
    }
  }
}
