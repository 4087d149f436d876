/**
 * A build-queue worker process for the queue tests: `node --import tsx test/helpers/queue-worker.ts URL WORKER SLOTS`.
 * Its handler sleeps `payload.ms` (or `payload.retryMs` on a later attempt), abortably, and records each run in the
 * test table `test_runs`; with `payload.fail` it then throws that message (start and end by the server's clock, so runs of different processes compare). It prints
 * `started BUILD ATTEMPT` when a run starts and `ready` once it takes jobs.
 */
import { openPg } from '../../src/pg/index.js';
import { createPgBuildQueue } from '../../src/queue/index.js';

const [url, workerId, slots] = process.argv.slice(2);
const db = await openPg({ database: url!, max: 6 });
const queue = await createPgBuildQueue({ db, reapIntervalMs: 300 });
const worker = await queue.startWorker({
  workerId: workerId!,
  slots: Number(slots ?? 1),
  pollMs: 200,
  async handler(job, { signal }) {
    const payload = job.payload as { ms: number; retryMs?: number; fail?: string };
    const ms = job.attempt > 1 && payload.retryMs !== undefined ? payload.retryMs : payload.ms;
    const [row] = await db.query<{ id: number }>(
      'INSERT INTO test_runs (build_id, team_id, worker, attempt) VALUES ($1, $2, $3, $4) RETURNING id',
      [job.buildId, job.teamId, workerId, job.attempt]);
    process.stdout.write(`started ${job.buildId} ${job.attempt}\n`);
    const outcome = await new Promise<string>((resolve) => {
      const timer = setTimeout(() => resolve('done'), ms);
      signal.addEventListener('abort', () => { clearTimeout(timer); resolve('aborted'); }, { once: true });
    });
    await db.query('UPDATE test_runs SET ended_at = clock_timestamp(), outcome = $2 WHERE id = $1', [row!.id, outcome]);
    if (outcome === 'aborted') throw new Error('aborted');
    if (payload.fail) throw new Error(payload.fail);
    return { worker: workerId!, attempt: job.attempt };
  },
});
process.stdout.write('ready\n');
process.on('SIGTERM', () => {
  void worker.stop().then(() => queue.close()).then(() => db.close()).then(() => process.exit(0));
});
