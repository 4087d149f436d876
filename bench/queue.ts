/**
 * What the PostgreSQL build queue itself costs (src/queue): jobs that do nothing, so the figure is the queue's
 * ceiling, not a build rate. Starts its own PostgreSQL 15 and real worker processes (test/helpers/queue-worker.ts).
 *   node --import tsx bench/queue.ts [--jobs 200]
 * Prints enqueue rate, drain rate for 1 worker × 1 slot, 1 × 2 and 2 × 1, and the idle-worker pickup latency.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { openPg } from '../src/pg/index.js';
import { createPgBuildQueue, type BuildQueue } from '../src/queue/index.js';
import { repoRoot } from '../test/helpers/kiln.js';
import { startPostgres } from '../test/helpers/postgres.js';

const jobsArg = process.argv.indexOf('--jobs');
const N = jobsArg > 0 ? Number(process.argv[jobsArg + 1]) : 200;

function worker(url: string, id: string, slots: number): Promise<ChildProcess> {
  const proc = spawn(process.execPath, ['--import', 'tsx', path.join(repoRoot, 'test/helpers/queue-worker.ts'), url, id, String(slots)], { cwd: repoRoot, stdio: ['ignore', 'pipe', 'inherit'] });
  return new Promise((resolve) => proc.stdout!.on('data', (c: Buffer) => { if (c.toString().includes('ready')) resolve(proc); }));
}

async function drained(queue: BuildQueue, ids: string[]): Promise<void> {
  for (const id of ids) {
    for (;;) {
      const s = await queue.status(id);
      if (s?.state === 'succeeded') break;
      await new Promise((r) => setTimeout(r, 20));
    }
  }
}

const srv = await startPostgres();
try {
  for (const [workers, slots] of [[1, 1], [1, 2], [2, 1]] as const) {
    const url = await srv.createDatabase(`q_${workers}_${slots}`);
    const db = await openPg({ database: url });
    const queue = await createPgBuildQueue({ db });
    await db.query('CREATE TABLE test_runs (id serial PRIMARY KEY, build_id text, team_id text, worker text, attempt int, started_at timestamptz DEFAULT clock_timestamp(), ended_at timestamptz, outcome text)');
    for (const t of ['a', 'b', 'c']) await queue.setTeamLimit(t, 8);
    const ids = Array.from({ length: N }, (_, i) => `b${i}`);
    let t0 = performance.now();
    for (const [i, id] of ids.entries()) await queue.enqueue({ teamId: ['a', 'b', 'c'][i % 3]!, buildId: id, payload: { ms: 0 } });
    const enqueueRate = N / ((performance.now() - t0) / 1000);
    const procs = await Promise.all(Array.from({ length: workers }, (_, i) => worker(url, `w${i}`, slots)));
    t0 = performance.now();
    await drained(queue, ids);
    const drainRate = N / ((performance.now() - t0) / 1000);
    // pickup latency: one job for an idle worker (woken by NOTIFY, not by its poll)
    const lat: number[] = [];
    for (let i = 0; i < 5; i++) {
      const t1 = performance.now();
      await queue.enqueue({ teamId: 'a', buildId: `lat${i}`, payload: { ms: 0 } });
      await drained(queue, [`lat${i}`]);
      lat.push(performance.now() - t1);
    }
    lat.sort((a, b) => a - b);
    console.log(`${workers} worker(s) x ${slots} slot(s): enqueue ${enqueueRate.toFixed(0)} jobs/s, drain ${drainRate.toFixed(0)} jobs/s, enqueue-to-done of one job on an idle worker median ${lat[2]!.toFixed(0)} ms`);
    for (const p of procs) p.kill('SIGTERM');
    await Promise.all(procs.map((p) => new Promise((r) => p.once('exit', r))));
    await queue.close();
    await db.close();
  }
} finally {
  await srv.stop();
}
