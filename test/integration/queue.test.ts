/**
 * The PostgreSQL build queue (src/queue) with a real PostgreSQL 15 and real worker processes (child processes, each
 * with its own connections): exactly-once delivery, per-team limits across workers, a SIGKILLed worker's build
 * retried elsewhere, cancellation reaching the worker.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { openPg, type PgDatabase } from '../../src/pg/index.js';
import { createPgBuildQueue, type BuildQueue, type JobStatus } from '../../src/queue/index.js';
import { repoRoot } from '../helpers/kiln.js';
import { skipWithoutPostgres, startPostgres } from '../helpers/postgres.js';

interface WorkerProc {
  proc: ChildProcess;
  lines: string[];
  stderr: () => string;
  waitFor(line: string, timeoutMs?: number): Promise<void>;
}

function startWorkerProc(t: TestContext, url: string, id: string, slots: number): WorkerProc {
  const proc = spawn(process.execPath, ['--import', 'tsx', path.join(repoRoot, 'test/helpers/queue-worker.ts'), url, id, String(slots)], {
    cwd: repoRoot,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const lines: string[] = [];
  let err = '';
  const waiters: Array<() => void> = [];
  let buf = '';
  proc.stdout!.on('data', (c: Buffer) => {
    buf += c.toString();
    const parts = buf.split('\n');
    buf = parts.pop()!;
    lines.push(...parts);
    for (const w of waiters.splice(0)) w();
  });
  proc.stderr!.on('data', (c: Buffer) => (err += c.toString()));
  t.after(() => {
    if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
  });
  return {
    proc,
    lines,
    stderr: () => err,
    async waitFor(line, timeoutMs = 60_000) {
      const deadline = Date.now() + timeoutMs;
      while (!lines.includes(line)) {
        if (proc.exitCode !== null) throw new Error(`worker ${id} exited (${proc.exitCode}) before "${line}": ${err}`);
        if (Date.now() > deadline) throw new Error(`worker ${id}: no "${line}" within ${timeoutMs} ms; stderr: ${err}`);
        await new Promise<void>((r) => { waiters.push(r); setTimeout(r, 200); });
      }
    },
  };
}

async function setup(t: TestContext): Promise<{ url: string; db: PgDatabase; queue: BuildQueue }> {
  const srv = await startPostgres(t);
  const url = await srv.createDatabase('kiln');
  const db = await openPg({ database: url });
  const queue = await createPgBuildQueue({ db });
  t.after(async () => {
    await queue.close();
    await db.close();
  });
  await db.query(`CREATE TABLE test_runs (
    id serial PRIMARY KEY, build_id text NOT NULL, team_id text NOT NULL, worker text NOT NULL, attempt int NOT NULL,
    started_at timestamptz NOT NULL DEFAULT clock_timestamp(), ended_at timestamptz, outcome text)`);
  return { url, db, queue };
}

async function waitForStatus(queue: BuildQueue, buildId: string, states: string[], timeoutMs = 60_000): Promise<JobStatus> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const s = await queue.status(buildId);
    if (s && states.includes(s.state)) return s;
    if (Date.now() > deadline) throw new Error(`build ${buildId}: still ${s?.state} after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** The largest number of runs of one team that were in progress at the same instant. */
function maxOverlap(runs: Array<{ started_at: Date; ended_at: Date }>): number {
  const edges = runs.flatMap((r) => [{ t: r.started_at.getTime(), d: 1 }, { t: r.ended_at.getTime(), d: -1 }]);
  edges.sort((a, b) => a.t - b.t || a.d - b.d); // an end at the same instant as a start is not an overlap
  let cur = 0;
  let max = 0;
  for (const e of edges) max = Math.max(max, (cur += e.d));
  return max;
}

test('two worker processes take 20 builds of two teams, each exactly once, within each team\'s limit', async (t) => {
  if (skipWithoutPostgres(t)) return;
  const { url, db, queue } = await setup(t);
  await queue.setTeamLimit('team-a', 2);
  await queue.setTeamLimit('team-b', 1);
  const w1 = startWorkerProc(t, url, 'w1', 2);
  const w2 = startWorkerProc(t, url, 'w2', 2);
  await Promise.all([w1.waitFor('ready'), w2.waitFor('ready')]);
  const builds: string[] = [];
  for (let i = 0; i < 10; i++) {
    for (const team of ['team-a', 'team-b']) {
      const buildId = `${team}-${i}`;
      builds.push(buildId);
      await queue.enqueue({ teamId: team, buildId, payload: { ms: 400 } });
    }
  }
  await assert.rejects(queue.enqueue({ teamId: 'team-a', buildId: 'team-a-0', payload: { ms: 1 } }), /already queued/);
  for (const b of builds) {
    const s = await waitForStatus(queue, b, ['succeeded', 'failed', 'cancelled']);
    assert.equal(s.state, 'succeeded', `${b}: ${s.error ?? ''}`);
    assert.equal(s.attempts, 1);
  }
  const runs = await db.query<{ build_id: string; team_id: string; worker: string; started_at: Date; ended_at: Date; outcome: string }>(
    'SELECT build_id, team_id, worker, started_at, ended_at, outcome FROM test_runs ORDER BY id');
  assert.equal(runs.length, 20, 'one run per build');
  assert.deepEqual([...new Set(runs.map((r) => r.build_id))].sort(), [...builds].sort(), 'every build ran, none twice');
  assert.ok(runs.every((r) => r.outcome === 'done' && r.ended_at));
  const byWorker = new Map<string, number>();
  for (const r of runs) byWorker.set(r.worker, (byWorker.get(r.worker) ?? 0) + 1);
  assert.ok((byWorker.get('w1') ?? 0) > 0 && (byWorker.get('w2') ?? 0) > 0, `both workers ran builds: ${JSON.stringify([...byWorker])}`);
  const overlapA = maxOverlap(runs.filter((r) => r.team_id === 'team-a'));
  const overlapB = maxOverlap(runs.filter((r) => r.team_id === 'team-b'));
  t.diagnostic(`runs per worker ${JSON.stringify(Object.fromEntries(byWorker))}; max overlap team-a ${overlapA} (limit 2), team-b ${overlapB} (limit 1), all ${maxOverlap(runs)}`);
  assert.equal(overlapA, 2, 'team-a ran two at a time, never more');
  assert.equal(overlapB, 1, 'team-b ran one at a time');
  assert.ok(maxOverlap(runs) >= 3, 'the two teams ran side by side on the four slots');
  // a slot deletes its lease just after the job's completion is visible: wait a moment for the last one
  let leases = await db.query('SELECT * FROM queue_leases');
  for (let i = 0; i < 50 && leases.length > 0; i++) {
    await new Promise((r) => setTimeout(r, 100));
    leases = await db.query('SELECT * FROM queue_leases');
  }
  assert.equal(leases.length, 0, 'no lease is left behind');
});

test('a worker killed with SIGKILL mid-build loses its lease and the build completes on the other worker', async (t) => {
  if (skipWithoutPostgres(t)) return;
  const { url, db, queue } = await setup(t);
  const a = startWorkerProc(t, url, 'wa', 1);
  await a.waitFor('ready');
  await queue.enqueue({ teamId: 'team-k', buildId: 'k1', payload: { ms: 120_000, retryMs: 300 } });
  await a.waitFor('started k1 1');
  const b = startWorkerProc(t, url, 'wb', 1);
  await b.waitFor('ready');
  assert.equal((await queue.status('k1'))!.state, 'running');
  const killedAt = Date.now();
  a.proc.kill('SIGKILL');
  await b.waitFor('started k1 2', 30_000);
  const retryAfterMs = Date.now() - killedAt;
  const s = await waitForStatus(queue, 'k1', ['succeeded', 'failed', 'cancelled']);
  assert.equal(s.state, 'succeeded');
  assert.equal(s.attempts, 2);
  assert.deepEqual(s.result, { worker: 'wb', attempt: 2 });
  const runs = await db.query<{ worker: string; attempt: number; outcome: string | null }>('SELECT worker, attempt, outcome FROM test_runs ORDER BY id');
  assert.deepEqual(runs, [{ worker: 'wa', attempt: 1, outcome: null }, { worker: 'wb', attempt: 2, outcome: 'done' }]);
  t.diagnostic(`the build restarted on the other worker ${retryAfterMs} ms after the SIGKILL`);
  assert.ok(retryAfterMs < 15_000, `retried within seconds (${retryAfterMs} ms), not at pg-boss's expiry`);
  assert.equal(b.lines.filter((l) => l.startsWith('started')).length, 1);
});

test('cancelling a running build aborts it on its worker; a cancelled queued build never runs; a failed build is not retried', async (t) => {
  if (skipWithoutPostgres(t)) return;
  const { url, db, queue } = await setup(t);
  const w = startWorkerProc(t, url, 'wc', 1);
  await w.waitFor('ready');
  await queue.enqueue({ teamId: 'team-c', buildId: 'c1', payload: { ms: 120_000 } });
  await w.waitFor('started c1 1');
  await queue.enqueue({ teamId: 'team-c', buildId: 'c2', payload: { ms: 10 } });
  assert.equal((await queue.status('c2'))!.state, 'queued', 'the only slot is busy with c1');
  assert.equal(await queue.cancel('c2'), true);
  const cancelledAt = Date.now();
  assert.equal(await queue.cancel('c1'), true);
  const deadline = Date.now() + 10_000;
  let run: { outcome: string | null } | undefined;
  while (Date.now() < deadline) {
    [run] = await db.query<{ outcome: string | null }>("SELECT outcome FROM test_runs WHERE build_id = 'c1'");
    if (run?.outcome) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  const reachedMs = Date.now() - cancelledAt;
  assert.equal(run?.outcome, 'aborted', 'the handler saw its signal abort');
  t.diagnostic(`cancellation reached the worker in ${reachedMs} ms`);
  assert.equal((await queue.status('c1'))!.state, 'cancelled');
  assert.equal((await queue.status('c2'))!.state, 'cancelled');
  assert.equal(await queue.cancel('c1'), false, 'already finished');
  assert.equal(await queue.status('nope'), undefined);
  // the worker is free again and takes new work, but neither cancelled build comes back
  await queue.enqueue({ teamId: 'team-c', buildId: 'c3', payload: { ms: 10 } });
  assert.equal((await waitForStatus(queue, 'c3', ['succeeded'])).state, 'succeeded');
  // a build that fails is reported failed with its error, and not retried (only a lost worker means a retry)
  await queue.enqueue({ teamId: 'team-c', buildId: 'c4', payload: { ms: 10, fail: 'RUN exited with 2' } });
  const failed = await waitForStatus(queue, 'c4', ['succeeded', 'failed']);
  assert.deepEqual([failed.state, failed.attempts, failed.error], ['failed', 1, 'RUN exited with 2']);
  await new Promise((r) => setTimeout(r, 1000));
  const runs = await db.query<{ build_id: string }>('SELECT build_id FROM test_runs ORDER BY id');
  assert.deepEqual(runs.map((r) => r.build_id), ['c1', 'c3', 'c4']);
});

test('a worker whose connections are cut reconnects and goes on; a worker stopped without waiting hands its build back', async (t) => {
  if (skipWithoutPostgres(t)) return;
  const { db, queue } = await setup(t);
  const runs: Array<{ worker: string; buildId: string; attempt: number }> = [];
  const started = new Map<string, () => void>();
  const whenStarted = (buildId: string): Promise<void> => new Promise((r) => started.set(buildId, r));
  const handler = (worker: string) => async (job: { buildId: string; attempt: number; payload: unknown }, ctx: { signal: AbortSignal }) => {
    runs.push({ worker, buildId: job.buildId, attempt: job.attempt });
    started.get(job.buildId)?.();
    const { ms } = job.payload as { ms: number };
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(resolve, ms);
      ctx.signal.addEventListener('abort', () => { clearTimeout(timer); reject(new Error('aborted')); }, { once: true });
    });
    return { worker };
  };
  const w1 = await queue.startWorker({ workerId: 'cut', slots: 1, pollMs: 200, handler: handler('cut') });
  t.after(() => w1.stop({ wait: false }));
  for (let i = 0; i < 100; i++) {
    const [open] = await db.query<{ n: number }>("SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name LIKE 'kiln-worker cut %'");
    if (open!.n === 2) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  const cut = await db.query<{ n: number }>("SELECT count(pg_terminate_backend(pid))::int AS n FROM pg_stat_activity WHERE application_name LIKE 'kiln-worker cut %'");
  assert.equal(cut[0]!.n, 2, 'the slot session and the control connection were terminated');
  await queue.enqueue({ teamId: 't', buildId: 'r1', payload: { ms: 10 } });
  const s1 = await waitForStatus(queue, 'r1', ['succeeded', 'failed'], 30_000);
  assert.deepEqual([s1.state, s1.result], ['succeeded', { worker: 'cut' }]);

  const p = whenStarted('r2');
  await queue.enqueue({ teamId: 't', buildId: 'r2', payload: { ms: 120_000 } });
  await p;
  await w1.stop({ wait: false });
  const handedBack = await queue.status('r2');
  assert.ok(handedBack && ['retry', 'queued'].includes(handedBack.state), `handed back, not lost: ${handedBack?.state}`);
  const w2 = await queue.startWorker({ workerId: 'next', slots: 1, pollMs: 200, handler: async (job, ctx) => handler('next')({ ...job, payload: { ms: 10 } }, ctx) });
  t.after(() => w2.stop());
  const s2 = await waitForStatus(queue, 'r2', ['succeeded', 'failed'], 30_000);
  assert.deepEqual([s2.state, s2.attempts, s2.result], ['succeeded', 2, { worker: 'next' }]);
  assert.deepEqual(runs.map((r) => `${r.worker}:${r.buildId}:${r.attempt}`), ['cut:r1:1', 'cut:r2:1', 'next:r2:2']);
});
