import { randomBytes } from 'node:crypto';
import { BuildError, formatUserError, isBuildError } from '../errors/index.js';
import type { BuildQueue as SharedQueue } from '../queue/index.js';
import { BuildQueue, type ServiceBuild, type ServiceBuildStatus, type ServiceStore, type Team } from '../service/index.js';
import type { ServerConfig } from './config.js';
import type { ServerMetrics } from './metrics.js';
import { BuildEvents, buildInTeamSpace, splitTemplateName, type BuildOutcome, type BuildSpec } from './run-build.js';
import { baseCredentials, requestToStore } from './credentials.js';
import type { TeamSpaces } from './teams.js';

export { splitTemplateName } from './run-build.js';
export type { BuildSpec, BuildOutcome } from './run-build.js';

/** One JSON line of a build's event stream: the `--progress=json` lines, numbered. */
type Listener = (seq: number, data: string) => void;

interface Live {
  events: BuildEvents;
  controller: AbortController;
  cancelled: boolean;
  shutdown: boolean;
}

export interface BuildServiceDeps {
  config: ServerConfig;
  store: ServiceStore;
  spaces: TeamSpaces;
  metrics: ServerMetrics;
  log: (line: Record<string, unknown>) => void;
  /** with `--database`: builds are enqueued here and run by workers (any process); absent: run in this process */
  shared?: SharedQueue;
}

const FINISHED: ServiceBuildStatus[] = ['success', 'failed', 'cancelled', 'interrupted'];
const isFinishLine = (data: string): boolean => data.startsWith('{"type":"finish"');

/** Record a build's end in the store and as its last event line. */
export async function recordFinish(store: ServiceStore, events: BuildEvents, id: string, status: ServiceBuildStatus, outcome: BuildOutcome | null, error: string | null): Promise<void> {
  await store.finishBuild(id, status, outcome, error);
  events.emit({ type: 'finish', ok: status === 'success', status, ...(error ? { error } : {}), at: Date.now() });
  await events.flush();
}

/** Count a finished build in the metrics and log it. */
export function noteFinished(deps: Pick<BuildServiceDeps, 'metrics' | 'log'>, team: Team, id: string, status: ServiceBuildStatus, started: number, o: BuildOutcome | null, error: string | null, extra: Record<string, unknown> = {}): void {
  const cached = o?.steps.filter((s) => s.cached).length ?? 0;
  const total = o?.steps.length ?? 0;
  const m = deps.metrics;
  m.builds.inc({ result: status });
  m.stepHits.inc(cached);
  m.stepMisses.inc(total - cached);
  m.buildDuration.observe({ result: status }, (Date.now() - started) / 1000);
  deps.log({ msg: 'build', team: team.name, teamId: team.id, buildId: id, status, durationMs: Date.now() - started, cachedSteps: cached, totalSteps: total, ...(o ? { digest: o.digest } : {}), ...(error ? { error } : {}), ...extra });
}

/**
 * Builds as resources: checked, recorded and queued; events kept for replay. Without a database they run in this
 * process (queued in order, in the team's state root here); with one they go on the shared PostgreSQL queue and
 * whichever worker takes them runs them (src/server/worker.ts), this node only reading their records and events.
 */
export class BuildService {
  /** the in-process queue: builds of a one-machine server, and local hand-offs (ROOT/kiln.sock) */
  readonly queue: BuildQueue;
  private readonly live = new Map<string, Live>();
  private accepting = true;

  constructor(private readonly deps: BuildServiceDeps) {
    this.queue = new BuildQueue(deps.config.maxBuilds);
  }

  private gauges(): void {
    this.deps.metrics.queueLength.set(this.queue.queued);
    this.deps.metrics.running.set(this.queue.active);
  }

  /**
   * At start, one machine: every team's state root is opened (which removes what a killed server left: containers,
   * mounts, temp blobs, uncommitted snapshots); builds it was running are interrupted; queued ones are queued again.
   * With a database the queue keeps them: a lost worker's build is retried by the queue, not here.
   */
  async recover(): Promise<void> {
    if (this.deps.shared) return;
    const { store } = this.deps;
    for (const team of await store.listTeams()) await this.deps.spaces.get(team);
    for (const b of await store.listBuilds(['running'])) {
      await recordFinish(store, await BuildEvents.open(store, b.id), b.id, 'interrupted', null, 'the server stopped while the build ran');
    }
    for (const b of await store.listBuilds(['queued'])) {
      const team = await store.getTeam(b.teamId);
      if (team) await this.enqueueLocal(team, b.id, b.request as BuildSpec);
    }
  }

  /** Check and queue a build; returns its record. Refusals are BuildErrors (400 with the field). */
  async submit(team: Team, spec: BuildSpec, o: { startedBy?: string } = {}): Promise<ServiceBuild> {
    if (!this.accepting) throw new BuildError('ERR_KILN_SERVICE_UNAVAILABLE', 'the server is shutting down');
    if ((spec.template ? 1 : 0) + (spec.dockerfile !== undefined ? 1 : 0) !== 1) throw new BuildError('ERR_KILN_SERVICE_REQUEST', 'body: give exactly one of "template" and "dockerfile"');
    if (spec.name !== undefined) splitTemplateName(spec.name);
    const space = await this.deps.spaces.get(team);
    const bytes = spec.context.reduce((n, e) => n + (e.type === 'file' && !e.linkOf ? e.size ?? 0 : 0), 0);
    if (bytes > space.limits.uploadBytesPerBuild) throw new BuildError('ERR_KILN_LIMIT_EXCEEDED', `context: ${bytes} bytes is more than the team's limit of ${space.limits.uploadBytesPerBuild} bytes per build (uploadBytesPerBuild)`);
    const blobs = spec.context.flatMap((e) => (e.type === 'file' && e.digest && !e.linkOf ? [e.digest] : []));
    const missing = await space.uploads.missing(blobs);
    if (missing.length > 0) throw new BuildError('ERR_KILN_SERVICE_REQUEST', `context: ${missing.length} file(s) not uploaded yet (first: ${missing[0]})`, { details: { missing } });
    const id = `b${Date.now().toString(36)}${randomBytes(6).toString('hex')}`;
    const template = spec.name !== undefined ? splitTemplateName(spec.name).name : null;
    // registry credentials of a template's base are stored only sealed with the deployment's key (a worker, or this
    // server after a restart, opens them); without a key a one-machine server hands them to its run in memory only,
    // and a shared deployment cannot pass them on at all
    const key = this.deps.config.credentialsKey;
    if (baseCredentials(spec) && !key && this.deps.shared) {
      throw new BuildError('ERR_KILN_SERVICE_CREDENTIALS', 'the base image has registry credentials, and this server has no --credentials-key-file: builds run on workers, which could not get them', { details: { field: 'template.base.credentials' } });
    }
    const stored = requestToStore(spec, { ...(key ? { key } : {}), teamId: team.id, buildId: id });
    await space.uploads.retain(id, blobs);
    await this.deps.store.createBuild({ id, teamId: team.id, request: stored, template, ...(o.startedBy ? { createdByKey: o.startedBy } : {}) });
    if (this.deps.shared) {
      await this.deps.shared.setTeamLimit(team.id, space.limits.concurrentBuilds);
      await this.deps.shared.enqueue({ teamId: team.id, buildId: id, payload: null });
    } else {
      await this.enqueueLocal(team, id, spec);
    }
    return (await this.deps.store.getBuild(team.id, id))!;
  }

  private async enqueueLocal(team: Team, id: string, spec: BuildSpec): Promise<void> {
    const live: Live = { events: await BuildEvents.open(this.deps.store, id), controller: new AbortController(), cancelled: false, shutdown: false };
    this.live.set(id, live);
    this.queue.submit({ id, teamId: team.id, teamLimit: this.deps.spaces.limitsOf(team).concurrentBuilds, run: () => this.run(team, id, spec, live) });
    this.gauges();
  }

  private async run(team: Team, id: string, spec: BuildSpec, live: Live): Promise<void> {
    const { store, spaces, config } = this.deps;
    const started = Date.now();
    await store.setBuildRunning(id);
    this.gauges();
    let status: ServiceBuildStatus = 'failed';
    let error: string | null = null;
    let outcome: BuildOutcome | null = null;
    try {
      outcome = await buildInTeamSpace({ config, store, spaces, team, id, spec, events: live.events, signal: live.controller.signal });
      status = 'success';
    } catch (err) {
      status = live.cancelled ? 'cancelled' : live.shutdown ? 'interrupted' : 'failed';
      error = live.cancelled ? 'cancelled' : formatUserError(err);
      if (!isBuildError(err)) process.stderr.write(`kiln serve: build ${id}: ${err instanceof Error ? err.stack : String(err)}\n`);
    }
    await recordFinish(store, live.events, id, status, outcome, error).catch((err: unknown) => process.stderr.write(`kiln serve: build ${id}: recording its end: ${formatUserError(err)}\n`));
    this.live.delete(id);
    this.gauges();
    noteFinished(this.deps, team, id, status, started, outcome, error);
  }

  /** Cancel a queued or running build of the team (false: it is not queued or running). */
  async cancel(team: Team, id: string): Promise<boolean> {
    const { store, shared } = this.deps;
    const b = await store.getBuild(team.id, id);
    if (!b || FINISHED.includes(b.status)) return false;
    if (shared) {
      if (!(await shared.cancel(id))) return false;
      // a queued build never reaches a worker: its end is recorded here; a running one's worker records it
      const now = await store.getBuild(team.id, id);
      if (now?.status === 'queued') await recordFinish(store, await BuildEvents.open(store, id), id, 'cancelled', null, 'cancelled');
      return true;
    }
    const live = this.live.get(id);
    if (!live) return false;
    live.cancelled = true;
    if (this.queue.remove(id)) {
      await recordFinish(store, live.events, id, 'cancelled', null, 'cancelled');
      this.live.delete(id);
      this.gauges();
      return true;
    }
    live.controller.abort(new BuildError('ERR_KILN_INTERRUPTED', 'build cancelled'));
    return true;
  }

  /**
   * Follow a build's events after `afterSeq`: stored ones first, then new ones, without a gap or a repeat, until its
   * `finish` line was delivered (or `signal` aborts). A build running in this process hands its lines over live;
   * one run by a worker elsewhere is followed in the store (short polling).
   */
  async follow(teamId: string, id: string, afterSeq: number, onEvent: Listener, signal: AbortSignal): Promise<void> {
    let last = afterSeq;
    let done = false;
    const deliver = (seq: number, data: string): void => {
      if (done || seq <= last) return;
      last = seq;
      onEvent(seq, data);
      if (isFinishLine(data)) done = true;
    };
    const live = this.live.get(id);
    if (live) {
      // live lines arriving while the stored ones are read wait in order behind them
      const early: Array<[number, string]> = [];
      let replaying = true;
      const listener: Listener = (seq, data) => (replaying ? early.push([seq, data]) : deliver(seq, data));
      live.events.listeners.add(listener);
      try {
        for (const e of await this.deps.store.eventsAfter(id, afterSeq)) deliver(e.seq, e.data);
        replaying = false;
        for (const [seq, data] of early) deliver(seq, data);
        await new Promise<void>((resolve) => {
          const check = setInterval(() => (done || signal.aborted || !this.live.has(id)) && stop(), 100);
          const stop = (): void => {
            clearInterval(check);
            signal.removeEventListener('abort', stop);
            resolve();
          };
          signal.addEventListener('abort', stop);
        });
      } finally {
        live.events.listeners.delete(listener);
      }
      if (done || signal.aborted) return;
    }
    await this.pollStore(teamId, id, () => last, deliver, () => done, signal);
  }

  /**
   * Follow a build run elsewhere in the store: woken by the store's notifications (PostgreSQL LISTEN/NOTIFY) when it
   * has them, with a read every second as the fallback (a lost listening connection); every 200 ms without them.
   */
  private async pollStore(teamId: string, id: string, last: () => number, deliver: Listener, done: () => boolean, signal: AbortSignal): Promise<void> {
    const { store } = this.deps;
    let changed = false;
    let wake: (() => void) | undefined;
    const unwatch = store.watchEvents ? await store.watchEvents(id, () => { changed = true; wake?.(); }) : undefined;
    const pause = (ms: number): Promise<void> => new Promise<void>((resolve) => {
      if (changed || signal.aborted) return resolve();
      const end = (): void => {
        clearTimeout(timer);
        signal.removeEventListener('abort', end);
        wake = undefined;
        resolve();
      };
      const timer = setTimeout(end, ms);
      signal.addEventListener('abort', end);
      wake = end;
    });
    let afterEnd = 0;
    try {
      while (!done() && !signal.aborted) {
        changed = false; // a notification from here on means: read again
        const got = await store.eventsAfter(id, last());
        for (const e of got) deliver(e.seq, e.data);
        if (done()) return;
        if (got.length === 0) {
          const b = await store.getBuild(teamId, id);
          // the end is recorded just before its finish line: a few more reads for it, then no more will come
          if (!b || FINISHED.includes(b.status)) if (++afterEnd > 5) return;
        }
        await pause(unwatch && afterEnd === 0 ? 1_000 : 200);
      }
    } finally {
      unwatch?.();
    }
  }

  /** SIGTERM: accept no more builds, let running ones finish within the timeout, then cancel them. */
  async shutdown(timeoutMs: number): Promise<void> {
    this.accepting = false;
    for (const [id, live] of this.live) if (this.queue.remove(id)) this.live.delete(id), live.events.listeners.clear(); // stays queued in the store: run at next start
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
