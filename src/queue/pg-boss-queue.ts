/**
 * The build queue on PostgreSQL, on pg-boss 10 (jobs, SKIP LOCKED claims, retries, expiry, cancellation) plus three
 * small tables of kiln's own (db/pg-migrations/0002_build-queue.sql) for what pg-boss lacks:
 *
 * - **per-team limits across workers**: each team has its own pg-boss queue; a worker slot first takes one of the
 *   team's N slot locks (a session advisory lock on the slot's own connection), and only then fetches one job of that
 *   team. N locks exist per team, so at most N of its jobs run anywhere.
 * - **leases that die with the worker**: while it runs a job, a slot holds a session advisory lock named after the
 *   job and has a row in `queue_leases`. A killed worker's connections close and PostgreSQL drops its locks at once;
 *   every worker's reaper looks for lease rows whose lock nobody holds and fails those jobs through pg-boss, which
 *   retries them (`retryLimit`) on whichever worker fetches next. pg-boss's own expiry (`expireInSeconds`) stays as
 *   the backstop for a lease row that was never written.
 * - **cancellation that reaches the worker**: `cancel` marks the job cancelled in pg-boss and sends NOTIFY; the
 *   worker running it LISTENs and aborts the handler's signal (and re-checks the state every few seconds, in case a
 *   notification was lost on a reconnect).
 */
import { createHash, randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import pg from 'pg';
import PgBoss from 'pg-boss';
import { BuildError, isBuildError } from '../errors/index.js';
import { migratePg, type PgDatabase } from '../pg/index.js';
import type { BuildQueue, EnqueueRequest, JobState, JobStatus, JsonValue, QueuedJob, QueueWorker, WorkerOptions } from './types.js';

export interface PgBuildQueueOptions {
  db: PgDatabase;
  /** a team without a row in queue_team_limits runs at most this many builds at once (default 2) */
  defaultTeamLimit?: number;
  /** runs of a job after a lost worker before it fails for good (default 3) */
  retryLimit?: number;
  /** pg-boss's own lease: an active job older than this is failed by pg-boss maintenance (default 6 h) */
  expireInSeconds?: number;
  /** how often each worker looks for leases of dead workers (default 1000 ms) */
  reapIntervalMs?: number;
}

const CANCEL_CHANNEL = 'kiln_queue_cancel';
const ENQUEUE_CHANNEL = 'kiln_queue_enqueue';

interface JobData {
  teamId: string;
  buildId: string;
  payload: JsonValue;
}

interface JobOutput {
  ok: boolean;
  result?: JsonValue;
  error?: string;
}

/** pg-boss queue names allow only [\w-]; a team id may hold anything, so the name is a digest of it. */
export function teamQueueName(teamId: string): string {
  return `kiln_build_${createHash('sha256').update(teamId).digest('hex').slice(0, 32)}`;
}

function queueError(what: string, err: unknown): BuildError {
  if (isBuildError(err)) return err;
  return new BuildError('ERR_KILN_QUEUE', `${what}: ${(err as Error).message ?? String(err)}`, { cause: err });
}

function lockSql(fn: 'pg_try_advisory_lock' | 'pg_advisory_lock' | 'pg_advisory_unlock'): string {
  return `SELECT ${fn}(hashtextextended($1, 0)) AS ok`;
}

function sleep(ms: number, wake: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (wake.aborted) return resolve();
    const timer = setTimeout(done, ms);
    function done(): void {
      clearTimeout(timer);
      wake.removeEventListener('abort', done);
      resolve();
    }
    wake.addEventListener('abort', done, { once: true });
  });
}

/** Open the queue: migrates kiln's schema and pg-boss's, and returns an interface any API node or worker can use. */
export async function createPgBuildQueue(opts: PgBuildQueueOptions): Promise<BuildQueue> {
  const { db } = opts;
  const defaultTeamLimit = opts.defaultTeamLimit ?? 2;
  const retryLimit = opts.retryLimit ?? 3;
  const expireInSeconds = opts.expireInSeconds ?? 6 * 3600;
  const reapIntervalMs = opts.reapIntervalMs ?? 1000;
  await migratePg(db);
  const bossDb = { executeSql: (text: string, values: unknown[]) => db.pool.query(text, values) };
  const boss = new PgBoss({ db: bossDb, schema: 'pgboss', supervise: true, schedule: false, migrate: true });
  let lastBossError: unknown;
  boss.on('error', (err) => (lastBossError = err));
  try {
    await boss.start();
  } catch (err) {
    throw queueError(`starting the build queue on ${db.displayUrl}`, err);
  }
  const createdQueues = new Set<string>();
  const workers = new Set<QueueWorker>();

  async function ensureQueue(name: string): Promise<void> {
    if (createdQueues.has(name)) return;
    await boss.createQueue(name, { name, policy: 'standard', retryLimit, retryDelay: 0, expireInSeconds });
    createdQueues.add(name);
  }

  async function lookup(buildId: string): Promise<{ job_id: string; team_id: string; queue_name: string; done_at: Date | null } | undefined> {
    const rows = await db.query<{ job_id: string; team_id: string; queue_name: string; done_at: Date | null }>(
      'SELECT job_id, team_id, queue_name, done_at FROM queue_jobs WHERE build_id = $1', [buildId]);
    return rows[0];
  }

  async function markDone(jobId: string): Promise<void> {
    await db.query('UPDATE queue_jobs SET done_at = now() WHERE job_id = $1 AND done_at IS NULL', [jobId]);
  }

  const queue: BuildQueue = {
    async enqueue(req, eopts = {}) {
      eopts.signal?.throwIfAborted();
      if (!req.teamId || !req.buildId) throw new BuildError('ERR_KILN_ARGUMENT', 'a queued build needs a teamId and a buildId');
      const name = teamQueueName(req.teamId);
      const jobId = randomUUID();
      try {
        await ensureQueue(name);
        await db.transaction(async (client) => {
          const ins = await client.query(
            'INSERT INTO queue_jobs (build_id, job_id, team_id, queue_name) VALUES ($1, $2, $3, $4) ON CONFLICT (build_id) DO NOTHING RETURNING job_id',
            [req.buildId, jobId, req.teamId, name]);
          if (ins.rowCount === 0) throw new BuildError('ERR_KILN_ARGUMENT', `build ${req.buildId} is already queued`);
          const data: JobData = { teamId: req.teamId, buildId: req.buildId, payload: req.payload };
          // the job row is written in the same transaction as kiln's: both or neither
          await boss.send(name, data, { id: jobId, db: { executeSql: (text: string, values: unknown[]) => client.query(text, values) } });
          await client.query(`SELECT pg_notify('${ENQUEUE_CHANNEL}', $1)`, [jobId]);
        });
      } catch (err) {
        throw queueError(`enqueueing build ${req.buildId}`, err);
      }
      return { jobId };
    },

    async cancel(buildId) {
      const row = await lookup(buildId);
      if (!row || row.done_at) return false;
      await boss.cancel(row.queue_name, row.job_id);
      const job = await boss.getJobById(row.queue_name, row.job_id);
      if (job?.state !== 'cancelled') return false;
      await markDone(row.job_id);
      await db.query(`SELECT pg_notify('${CANCEL_CHANNEL}', $1)`, [row.job_id]);
      return true;
    },

    async status(buildId) {
      const row = await lookup(buildId);
      if (!row) return undefined;
      const job = await boss.getJobById<JobData>(row.queue_name, row.job_id, { includeArchive: true });
      if (!job) return undefined;
      const output = (job.output ?? undefined) as JobOutput | undefined;
      const map: Record<typeof job.state, JobState> = {
        created: 'queued', retry: 'retry', active: 'running', cancelled: 'cancelled', failed: 'failed',
        completed: output?.ok === false ? 'failed' : 'succeeded',
      };
      const attempts = job.state === 'created' ? 0 : job.state === 'retry' ? job.retryCount : job.retryCount + 1;
      const out: JobStatus = { jobId: row.job_id, buildId, teamId: row.team_id, state: map[job.state], attempts };
      if (output?.ok === true && output.result !== undefined) out.result = output.result;
      if (output?.ok === false && output.error !== undefined) out.error = output.error;
      if (job.state === 'failed') out.error = 'the build was retried after lost workers until the retry limit and failed';
      return out;
    },

    async setTeamLimit(teamId, max) {
      if (!Number.isInteger(max) || max < 1) throw new BuildError('ERR_KILN_ARGUMENT', `team ${teamId}: the concurrency limit must be a whole number of at least 1, not ${max}`);
      await db.query('INSERT INTO queue_team_limits (team_id, max_concurrent) VALUES ($1, $2) ON CONFLICT (team_id) DO UPDATE SET max_concurrent = $2', [teamId, max]);
    },

    async startWorker(wopts) {
      const worker = await startWorker({ wopts, boss, db, defaultTeamLimit, reapIntervalMs, markDone });
      workers.add(worker);
      return {
        workerId: worker.workerId,
        running: () => worker.running(),
        async stop(sopts) {
          workers.delete(worker);
          await worker.stop(sopts);
        },
      };
    },

    async close() {
      for (const w of [...workers]) await w.stop({ wait: false });
      workers.clear();
      await boss.stop({ graceful: false, wait: true, close: false });
      void lastBossError;
    },
    [Symbol.asyncDispose]: () => queue.close(),
  };
  return queue;
}

interface WorkerDeps {
  wopts: WorkerOptions;
  boss: PgBoss;
  db: PgDatabase;
  defaultTeamLimit: number;
  reapIntervalMs: number;
  markDone(jobId: string): Promise<void>;
}

interface Running {
  controller: AbortController;
  cancelled: boolean;
}

async function connectSession(db: PgDatabase, name: string): Promise<pg.Client> {
  const client = new pg.Client({ connectionString: db.connectionString, application_name: name });
  client.on('error', () => undefined);
  await client.connect();
  return client;
}

async function startWorker(deps: WorkerDeps): Promise<QueueWorker> {
  const { wopts, boss, db } = deps;
  const workerId = wopts.workerId ?? `${hostname()}:${process.pid}`;
  const slots = wopts.slots ?? 1;
  const pollMs = wopts.pollMs ?? 500;
  const running = new Map<string, Running>();
  let stopping = false;
  let wake = new AbortController();
  const wakeAll = (): void => {
    wake.abort();
    wake = new AbortController();
  };

  const onNotification = (msg: pg.Notification): void => {
    if (msg.channel === CANCEL_CHANNEL && msg.payload) {
      const r = running.get(msg.payload);
      if (r) {
        r.cancelled = true;
        r.controller.abort(new BuildError('ERR_KILN_INTERRUPTED', 'the build was cancelled'));
      }
    } else if (msg.channel === ENQUEUE_CHANNEL) {
      wakeAll();
    }
  };
  // the control connection (LISTEN, the reaper) is re-opened by the next reaper tick when it breaks; notifications
  // missed meanwhile are covered by the slots' polling and the running jobs' cancel check
  let control: pg.Client | undefined;
  const openControl = async (): Promise<pg.Client> => {
    if (control) return control;
    const c = await connectSession(db, `kiln-worker ${workerId} control`);
    const drop = (): void => {
      if (control === c) control = undefined;
    };
    c.on('error', drop);
    c.on('end', drop);
    c.on('notification', onNotification);
    await c.query(`LISTEN ${CANCEL_CHANNEL}`);
    await c.query(`LISTEN ${ENQUEUE_CHANNEL}`);
    control = c;
    return c;
  };
  await openControl();

  // the reaper: a lease row whose job lock nobody holds belongs to a dead worker
  let reaping = false;
  const reap = async (): Promise<void> => {
    if (reaping || stopping) return;
    reaping = true;
    try {
      const control = await openControl();
      const leases = await control.query<{ job_id: string; queue_name: string; worker: string }>('SELECT job_id, queue_name, worker FROM queue_leases');
      for (const lease of leases.rows) {
        const key = `kiln-job:${lease.job_id}`;
        const { rows } = await control.query<{ ok: boolean }>(lockSql('pg_try_advisory_lock'), [key]);
        if (!rows[0]!.ok) continue;
        try {
          const del = await control.query('DELETE FROM queue_leases WHERE job_id = $1 RETURNING job_id', [lease.job_id]);
          if (del.rowCount === 1) {
            await boss.fail(lease.queue_name, lease.job_id, { error: `worker ${lease.worker} was lost`, ok: false });
            const job = await boss.getJobById(lease.queue_name, lease.job_id);
            if (job?.state === 'failed') await deps.markDone(lease.job_id);
            wakeAll();
          }
        } finally {
          await control.query(lockSql('pg_advisory_unlock'), [key]);
        }
      }
    } catch {
      // a failed round is retried at the next tick
    } finally {
      reaping = false;
    }
  };
  const reaper = setInterval(() => void reap(), deps.reapIntervalMs);

  let rotation = 0;
  const openTeams = async (session: pg.Client): Promise<Array<{ team_id: string; queue_name: string; max: number }>> => {
    const { rows } = await session.query<{ team_id: string; queue_name: string; max: number }>(
      `SELECT q.team_id, q.queue_name, COALESCE(l.max_concurrent, $1)::int AS max
         FROM (SELECT DISTINCT team_id, queue_name FROM queue_jobs WHERE done_at IS NULL) q
         LEFT JOIN queue_team_limits l USING (team_id) ORDER BY q.team_id`, [deps.defaultTeamLimit]);
    return rows;
  };

  /** Take a team slot and one job of that team, or nothing. The slot lock is held when a job is returned. */
  const claim = async (session: pg.Client): Promise<{ job: PgBoss.JobWithMetadata<JobData>; queueName: string; slotKey: string } | undefined> => {
    const teams = await openTeams(session);
    const start = rotation++;
    for (let i = 0; i < teams.length; i++) {
      const team = teams[(start + i) % teams.length]!;
      for (let s = 0; s < team.max; s++) {
        const slotKey = `kiln-team:${team.team_id}:${s}`;
        const { rows } = await session.query<{ ok: boolean }>(lockSql('pg_try_advisory_lock'), [slotKey]);
        if (!rows[0]!.ok) continue;
        const jobs = await boss.fetch<JobData>(team.queue_name, { batchSize: 1, includeMetadata: true });
        if (jobs.length > 0) return { job: jobs[0]!, queueName: team.queue_name, slotKey };
        await session.query(lockSql('pg_advisory_unlock'), [slotKey]);
        break; // this team has nothing waiting: try the next one
      }
    }
    return undefined;
  };

  const runJob = async (session: pg.Client, claimed: { job: PgBoss.JobWithMetadata<JobData>; queueName: string }): Promise<void> => {
    const { job, queueName } = claimed;
    const jobKey = `kiln-job:${job.id}`;
    await session.query(lockSql('pg_advisory_lock'), [jobKey]);
    const entry: Running = { controller: new AbortController(), cancelled: false };
    running.set(job.id, entry);
    let poll: NodeJS.Timeout | undefined;
    try {
      await session.query(
        `INSERT INTO queue_leases (job_id, build_id, team_id, queue_name, worker) VALUES ($1, $2, $3, $4, $5)
           ON CONFLICT (job_id) DO UPDATE SET worker = $5, started_at = now()`,
        [job.id, job.data.buildId, job.data.teamId, queueName, workerId]);
      const check = async (): Promise<void> => {
        const now = await boss.getJobById(queueName, job.id).catch(() => null);
        if (now?.state === 'cancelled' && !entry.controller.signal.aborted) {
          entry.cancelled = true;
          entry.controller.abort(new BuildError('ERR_KILN_INTERRUPTED', 'the build was cancelled'));
        }
      };
      await check();
      poll = setInterval(() => void check(), 2000);
      const queued: QueuedJob = { jobId: job.id, teamId: job.data.teamId, buildId: job.data.buildId, payload: job.data.payload, attempt: job.retryCount + 1 };
      let output: JobOutput;
      if (entry.controller.signal.aborted) {
        output = { ok: false, error: 'cancelled before it started' };
      } else {
        try {
          const result = await wopts.handler(queued, { signal: entry.controller.signal, workerId });
          output = { ok: true, result: result ?? null };
        } catch (err) {
          output = { ok: false, error: (err as Error).message ?? String(err) };
        }
      }
      clearInterval(poll);
      if (entry.cancelled) {
        // pg-boss already has it as cancelled; nothing to record
      } else if (entry.controller.signal.aborted) {
        // stop({ wait: false }): hand the job back for another worker
        await boss.fail(queueName, job.id, { ok: false, error: `worker ${workerId} stopped` });
      } else {
        await boss.complete(queueName, job.id, output);
        // only when this run's completion took: had the lease been lost (a broken session) and the job been reaped
        // and retried meanwhile, it must stay open for the run that now has it
        const after = await boss.getJobById(queueName, job.id);
        if (after?.state === 'completed') await deps.markDone(job.id);
      }
    } finally {
      if (poll) clearInterval(poll);
      running.delete(job.id);
      await session.query('DELETE FROM queue_leases WHERE job_id = $1 AND worker = $2', [job.id, workerId]).catch(() => undefined);
      await session.query(lockSql('pg_advisory_unlock'), [jobKey]).catch(() => undefined);
    }
  };

  const slotLoop = async (index: number): Promise<void> => {
    // a broken session (server restart, terminated backend) is dropped and re-opened; its locks went with it, so a
    // job it was running is reaped and retried by the queue like any lost worker's
    let session: pg.Client | undefined;
    while (!stopping) {
      const wakeSignal = wake.signal;
      let claimed: Awaited<ReturnType<typeof claim>>;
      try {
        session ??= await connectSession(db, `kiln-worker ${workerId} slot ${index}`);
        claimed = await claim(session);
      } catch {
        await session?.end().catch(() => undefined);
        session = undefined;
        claimed = undefined; // look again after the poll interval
      }
      if (!claimed || !session) {
        await sleep(pollMs, wakeSignal);
        continue;
      }
      try {
        await runJob(session, claimed);
        await session.query(lockSql('pg_advisory_unlock'), [claimed.slotKey]);
      } catch {
        await session.end().catch(() => undefined);
        session = undefined;
      }
    }
    await session?.end().catch(() => undefined);
  };

  const loops = Array.from({ length: slots }, (_, i) => slotLoop(i));
  const done = Promise.allSettled(loops);
  return {
    workerId,
    running: () => [...running.keys()],
    async stop(sopts = {}) {
      stopping = true;
      clearInterval(reaper);
      wakeAll();
      if (sopts.wait === false) for (const r of running.values()) r.controller.abort(new BuildError('ERR_KILN_INTERRUPTED', `worker ${workerId} is stopping`));
      await done;
      await control?.end().catch(() => undefined);
    },
  };
}
