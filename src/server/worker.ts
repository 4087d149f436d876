import { hostname } from 'node:os';
import { BuildError, formatUserError, isBuildError } from '../errors/index.js';
import type { BuildQueue as SharedQueue, QueuedJob, QueueWorker } from '../queue/index.js';
import type { ServiceBuildStatus, ServiceStore } from '../service/index.js';
import { noteFinished, recordFinish } from './builds.js';
import type { ServerConfig } from './config.js';
import type { ServerMetrics } from './metrics.js';
import { BuildEvents, buildInTeamSpace, teamCacheRef, type BuildOutcome, type BuildSpec } from './run-build.js';
import type { TeamSpaces } from './teams.js';

export interface BuildWorkerDeps {
  config: ServerConfig;
  store: ServiceStore;
  /** this worker's own team roots (under its --root): a cache of the shared registry, nothing more */
  spaces: TeamSpaces;
  queue: SharedQueue;
  metrics: ServerMetrics;
  log: (line: Record<string, unknown>) => void;
  slots: number;
}

/** Was the job's signal aborted by a cancel (rather than by this worker stopping)? */
function cancelledBy(signal: AbortSignal): boolean {
  const r = signal.reason as { message?: string } | undefined;
  return signal.aborted && /cancelled/.test(r?.message ?? '');
}

/**
 * A build worker (`kiln serve --worker`, or the slots of an API node with `--database`): takes builds off the
 * PostgreSQL queue, runs each in its own state root with the team's shared registry cache (`--cache-registry`), and
 * writes status, result and event lines to the store, where any API node reads them. A build taken again after a
 * lost worker resumes from the steps the registry already has (each is pushed when it finishes).
 */
export async function startBuildWorker(deps: BuildWorkerDeps): Promise<QueueWorker> {
  const workerId = `${hostname()}:${process.pid}`;
  return deps.queue.startWorker({
    workerId,
    slots: deps.slots,
    pollMs: 500,
    handler: (job, ctx) => runJob(deps, workerId, job, ctx.signal),
  });
}

async function runJob(deps: BuildWorkerDeps, workerId: string, job: QueuedJob, signal: AbortSignal): Promise<{ status: ServiceBuildStatus }> {
  const { store, spaces, config } = deps;
  const id = job.buildId;
  const b = await store.getBuild(job.teamId, id);
  const team = await store.getTeam(job.teamId);
  if (!b || !team || (b.status !== 'queued' && b.status !== 'running')) return { status: b?.status ?? 'failed' };
  const started = Date.now();
  const events = await BuildEvents.open(store, id);
  await store.setBuildRunning(id, workerId);
  // an info line (what every progress display shows) naming the worker and the attempt
  events.emit({ type: 'info', message: `running on worker ${workerId}${job.attempt > 1 ? ` (attempt ${job.attempt}, after a lost worker)` : ''}`, worker: workerId, attempt: job.attempt, at: started });
  const spec = b.request as BuildSpec;
  let status: ServiceBuildStatus = 'failed';
  let error: string | null = null;
  let outcome: BuildOutcome | null = null;
  try {
    outcome = await buildInTeamSpace({ config, store, spaces, team, id, spec, events, signal });
    status = 'success';
  } catch (err) {
    if (signal.aborted && !cancelledBy(signal)) {
      // this worker is stopping: the queue hands the build to another worker, which goes on from the registry
      await events.flush().catch(() => undefined);
      throw new BuildError('ERR_KILN_INTERRUPTED', `worker ${workerId} stopped during build ${id}`);
    }
    status = cancelledBy(signal) ? 'cancelled' : 'failed';
    error = status === 'cancelled' ? 'cancelled' : formatUserError(err);
    if (!isBuildError(err)) process.stderr.write(`kiln serve: build ${id}: ${err instanceof Error ? err.stack : String(err)}\n`);
  }
  await recordFinish(store, events, id, status, outcome, error);
  noteFinished(deps, team, id, status, started, outcome, error, { worker: workerId, attempt: job.attempt, cacheRegistry: teamCacheRef(config, team) ?? null });
  return { status };
}
