/**
 * `kiln serve --database` build throughput on this machine: one API node (`--workers 0`), a real PostgreSQL 15, a
 * real docker-registry as the shared cache, and worker processes (`--worker`) with their own state roots.
 *   1. N small builds (busybox, one RUN writing 2 MB; each different, so each runs) with 1 worker, then 2 workers
 *      (one slot each): builds per minute, submit of the first to the end of the last.
 *   2. the `layers` scenario as a template: cold on a worker with busybox, then rebuilt on a FRESH worker with an
 *      empty root from the registry cache (context uploaded once, through the API node).
 * Target: 2 workers > 1 worker where there are cores to spare; a fresh worker's rebuild several times faster than cold.
 *   node --import tsx bench/throughput.ts [--builds 8]      (needs root, runc, PostgreSQL 15, docker-registry; dist/ built)
 * Results: printed and written to bench/results/throughput-HHMM.txt.
 */
import { mkdirSync, mkdtempSync, promises as fsp, readFileSync, writeFileSync } from 'node:fs';
import { loadavg, cpus, tmpdir } from 'node:os';
import path from 'node:path';
import { KilnClient, runRemoteBuild } from '../src/client/index.js';
import { cleanup, kilnSync, newRoot, repoRoot } from '../test/helpers/kiln.js';
import { startPostgres } from '../test/helpers/postgres.js';
import { startRegistry } from '../test/helpers/registry.js';
import { api, startServe, waitBuild, type ServeProcess } from '../test/helpers/serve.js';

const arg = process.argv.indexOf('--builds');
const N = arg > 0 ? Number(process.argv[arg + 1]) : 8;
const lines: string[] = [];
const say = (l: string): void => {
  lines.push(l);
  process.stdout.write(`${l}\n`);
};

const pg = await startPostgres();
const reg = await startRegistry();
const dirs: string[] = [];
const procs: ServeProcess[] = [];
try {
  const database = await pg.createDatabase('kiln');
  const cacheRef = `${reg.host}/kiln`;
  const apiRoot = mkdtempSync(path.join(tmpdir(), 'kiln-bench-api-'));
  dirs.push(apiRoot);
  const apiNode = await startServe(apiRoot, ['--database', database, '--workers', '0', '--cache-registry', cacheRef, '--no-local-socket']);
  procs.push(apiNode);
  const admin = (args: string[]): string => {
    const r = kilnSync(['--root', apiRoot, 'admin', '--database', database, ...args]);
    if (r.code !== 0) throw new Error(r.stderr);
    return r.stdout.trim();
  };
  const teamKey = (name: string): string => {
    admin(['team', 'create', name, '--concurrent-builds', '8']);
    return admin(['key', 'create', '--team', name]);
  };
  const worker = async (root: string): Promise<ServeProcess> => {
    const w = await startServe(root, ['--worker', '--slots', '1', '--database', database, '--cache-registry', cacheRef]);
    procs.push(w);
    return w;
  };
  const busyboxRoot = async (): Promise<string> => {
    const d = await newRoot();
    dirs.push(d);
    return d;
  };
  say(`kiln serve --database throughput, ${new Date().toISOString()}, ${cpus().length} cores, load before ${loadavg().map((x) => x.toFixed(1)).join(' ')}`);

  const key = teamKey('bench');
  const batch = async (label: string, workers: number): Promise<number> => {
    const ws = await Promise.all(Array.from({ length: workers }, async () => worker(await busyboxRoot())));
    const t0 = performance.now();
    const ids: string[] = [];
    for (let i = 0; i < N; i++) {
      const dockerfile = `FROM busybox\nRUN echo ${label}-${i} > /id && dd if=/dev/urandom of=/blob bs=64k count=32 2>/dev/null\n`;
      const r = await api(apiNode.url, key, 'POST', '/v1/builds', { dockerfile, context: [] });
      ids.push((r.body as { id: string }).id);
    }
    for (const id of ids) {
      const b = await waitBuild(apiNode.url, key, id, 900_000);
      if (b.status !== 'success') throw new Error(`build ${id}: ${b.error}`);
    }
    const s = (performance.now() - t0) / 1000;
    const perMin = (N / s) * 60;
    say(`${N} small builds, ${workers} worker(s) × 1 slot: ${s.toFixed(1)} s, ${perMin.toFixed(1)} builds/min (load ${loadavg()[0]!.toFixed(1)})`);
    for (const w of ws) await w.stop();
    return perMin;
  };
  const one = await batch('one', 1);
  const two = await batch('two', 2);
  say(`2 workers / 1 worker: ${(two / one).toFixed(2)}×`);

  // a template cold, then on a fresh worker from the registry
  const ctx = mkdtempSync(path.join(tmpdir(), 'kiln-bench-ctx-'));
  dirs.push(ctx);
  const dockerfile = readFileSync(path.join(repoRoot, 'bench/scenarios/layers/Dockerfile'), 'utf8');
  writeFileSync(path.join(ctx, 'Dockerfile'), dockerfile);
  mkdirSync(path.join(ctx, 'src'));
  for (const tag of ['a', 'b', 'c']) await fsp.writeFile(path.join(ctx, 'src', `${tag}.txt`), Array.from({ length: 200 }, (_, i) => `${tag} line ${i} lorem ipsum dolor sit amet\n`).join(''));
  const tkey = teamKey('tpl');
  const timed = async (label: string, root: string): Promise<number> => {
    const w = await worker(root);
    const client = new KilnClient({ baseUrl: apiNode.url, apiKey: tkey });
    const t0 = performance.now();
    const out = await runRemoteBuild({ client, contextDir: ctx, spec: { dockerfile, name: 'layers' } });
    const s = (performance.now() - t0) / 1000;
    client.close();
    const b = out.build as { status: string; result: { steps: Array<{ cached: boolean }> } | null };
    if (b.status !== 'success') throw new Error(`${label}: ${JSON.stringify(b)}`);
    say(`template layers, ${label}: ${s.toFixed(2)} s, ${b.result!.steps.filter((x) => x.cached).length}/${b.result!.steps.length} steps cached, ${out.upload.bytes} bytes uploaded`);
    await w.stop();
    return s;
  };
  const cold = await timed('cold (worker with busybox only)', await busyboxRoot());
  const emptyRoot = mkdtempSync(path.join(tmpdir(), 'kiln-bench-empty-'));
  dirs.push(emptyRoot);
  const warm = await timed('fresh worker, empty root, from the registry cache', emptyRoot);
  say(`fresh-worker rebuild / cold: ${(cold / warm).toFixed(1)}× faster`);
  say(`load after ${loadavg().map((x) => x.toFixed(1)).join(' ')}`);
} finally {
  for (const p of procs) if (p.proc.exitCode === null) await p.kill();
  await reg.stop();
  await pg.stop();
  await cleanup(...dirs);
}
const stamp = new Date().toISOString().slice(11, 16).replace(':', '');
mkdirSync(path.join(repoRoot, 'bench/results'), { recursive: true });
writeFileSync(path.join(repoRoot, 'bench/results', `throughput-${stamp}.txt`), `${lines.join('\n')}\n`);
