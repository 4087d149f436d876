/**
 * `kiln serve --database` scaled out on one machine: a real PostgreSQL 15, a real docker-registry on loopback (the
 * shared cache, `--cache-registry`), one API node (`--workers 0`) and worker processes (`--worker`), each with its own
 * state root. The RUN steps call a counting HTTP server on loopback (the workers run `--network host` for that), so
 * "no RUN executed" and "fetched only the new bytes" are counted outside the builds.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { cleanup, kiln, kilnSync, newContext, newRoot, requireIntegration } from '../helpers/kiln.js';
import { KilnClient, runRemoteBuild } from '../../src/client/index.js';
import { skipWithoutPostgres, startPostgres, type TestPostgres } from '../helpers/postgres.js';
import { AUTH_PASS, AUTH_USER, skipWithoutRegistry, startAuthProxy, startRegistry, type TestRegistry } from '../helpers/registry.js';
import { Template } from '../../src/sdk/index.js';
import { api, startServe, waitBuild, type ServeProcess } from '../helpers/serve.js';
import { openPg, type PgDatabase } from '../../src/pg/index.js';

interface Hits {
  url: string;
  /** requests per path */
  count(p: string): number;
  /** bytes served under /pkg/ since the mark */
  pkgBytes(since: number): Array<{ name: string; bytes: number }>;
  mark(): number;
  waitFor(p: string, n?: number, timeoutMs?: number): Promise<void>;
  stop(): Promise<void>;
}

/**
 * The outside world of the RUN steps: `/ran/NAME` counts a run, `/pkg/NAME` serves a "package" of NAME's size,
 * `/delay/NAME` answers 30 the first time and 0 after.
 */
async function startHits(sizes: Record<string, number>): Promise<Hits> {
  const seen: string[] = [];
  const served: Array<{ name: string; bytes: number }> = [];
  const srv: Server = createServer((req, res) => {
    const p = req.url ?? '/';
    seen.push(p);
    const pkg = /^\/pkg\/(\w+)$/.exec(p);
    if (pkg && sizes[pkg[1]!] !== undefined) {
      const body = Buffer.alloc(sizes[pkg[1]!]!, pkg[1]!);
      served.push({ name: pkg[1]!, bytes: body.length });
      res.writeHead(200, { 'content-length': body.length });
      res.end(body);
      return;
    }
    // the first ask for a delay gets a long one (a RUN to kill in the middle), later asks none
    const delay = /^\/delay\/\w+$/.test(p) ? (seen.filter((x) => x === p).length === 1 ? '30' : '0') : undefined;
    res.end(delay ?? 'ok\n');
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(srv.address() as AddressInfo).port}`;
  const count = (p: string): number => seen.filter((s) => s === p).length;
  return {
    url,
    count,
    mark: () => served.length,
    pkgBytes: (since) => served.slice(since),
    async waitFor(p, n = 1, timeoutMs = 120_000) {
      const until = Date.now() + timeoutMs;
      while (count(p) < n) {
        if (Date.now() > until) throw new Error(`no ${n}× ${p} within ${timeoutMs} ms (seen: ${seen.join(' ')})`);
        await new Promise((r) => setTimeout(r, 100));
      }
    },
    stop: () => new Promise((r) => { srv.closeAllConnections(); srv.close(() => r()); }),
  };
}

type Build = Awaited<ReturnType<typeof waitBuild>> & { id?: string };

describe('kiln serve on PostgreSQL with queue workers and the registry as the shared cache', { concurrency: false }, () => {
  let pg: TestPostgres;
  let reg: TestRegistry;
  let hits: Hits;
  let db: PgDatabase;
  let apiNode: ServeProcess;
  let database: string;
  let cacheRef: string;
  /** every node's --credentials-key-file (one key for the deployment) */
  let keyFile: string;
  let ready = false;
  const dirs: string[] = [];
  const procs: ServeProcess[] = [];
  const keys = new Map<string, string>();

  const emptyRoot = (): string => {
    const d = mkdtempSync(path.join(tmpdir(), 'kiln-worker-empty-'));
    dirs.push(d);
    return d;
  };
  const busyboxRoot = async (): Promise<string> => {
    const d = await newRoot();
    dirs.push(d);
    return d;
  };
  const startWorker = async (root: string, slots = 1): Promise<ServeProcess> => {
    const w = await startServe(root, ['--worker', '--slots', String(slots), '--database', database, '--cache-registry', cacheRef, '--network', 'host', '--credentials-key-file', keyFile]);
    procs.push(w);
    return w;
  };
  const team = (name: string, concurrent: number): string => {
    const admin = (args: string[]): string => {
      const r = kilnSync(['--root', dirs[0]!, 'admin', '--database', database, ...args]);
      assert.equal(r.code, 0, r.stderr);
      return r.stdout.trim();
    };
    admin(['team', 'create', name, '--concurrent-builds', String(concurrent)]);
    const key = admin(['key', 'create', '--team', name]);
    keys.set(name, key);
    return key;
  };
  const submit = async (key: string, dockerfile: string, name?: string, buildArgs?: Record<string, string>): Promise<string> => {
    const r = await api(apiNode.url, key, 'POST', '/v1/builds', { dockerfile, context: [], ...(name ? { name } : {}), ...(buildArgs ? { buildArgs } : {}) });
    assert.equal(r.status, 202, r.text);
    return (r.body as { id: string }).id;
  };
  const finished = async (key: string, id: string, timeoutMs = 240_000): Promise<Build> => {
    const b = await waitBuild(apiNode.url, key, id, timeoutMs);
    assert.equal(b.status, 'success', `build ${id}: ${b.error ?? ''}`);
    return b;
  };
  const ranSteps = (b: Build): string[] => b.result!.steps.filter((s) => !/\] FROM /.test(s.name) && !s.cached).map((s) => s.name);

  before(async (t) => {
    if (!requireIntegration(t as never) || skipWithoutPostgres(t as never) || skipWithoutRegistry(t as never)) return;
    pg = await startPostgres();
    database = await pg.createDatabase('kiln');
    db = await openPg({ database, max: 2 });
    reg = await startRegistry();
    cacheRef = `${reg.host}/kiln`;
    hits = await startHits({ a: 40_000, b: 60_000, c: 25_000 });
    const apiRoot = mkdtempSync(path.join(tmpdir(), 'kiln-api-'));
    dirs.push(apiRoot);
    keyFile = path.join(apiRoot, 'credentials.key');
    writeFileSync(keyFile, randomBytes(32), { mode: 0o600 });
    apiNode = await startServe(apiRoot, ['--database', database, '--workers', '0', '--cache-registry', cacheRef, '--no-local-socket', '--credentials-key-file', keyFile]);
    procs.push(apiNode);
    ready = true;
  });

  after(async () => {
    for (const p of procs) if (p.proc.exitCode === null && p.proc.signalCode === null) await p.kill();
    await db?.close();
    await hits?.stop();
    await reg?.stop();
    await pg?.stop();
    await cleanup(...dirs);
  });

  const skip = (t: { skip(m: string): void }): boolean => {
    if (ready) return false;
    if (process.env.CI === 'true') throw new Error('the scale-out setup did not start');
    t.skip('needs root, runc, PostgreSQL and docker-registry');
    return true;
  };

  test('a template built on worker A, rebuilt on worker B with an empty root: every step cached, no RUN executed, same digest', async (t) => {
    if (skip(t)) return;
    const key = team('tpl', 2);
    // the context is uploaded to the API node, which keeps it in the registry (REF/<team>/uploads) for the workers
    const dockerfile = `FROM busybox\nRUN wget -q -O /one ${hits.url}/ran/one\nCOPY src/ /src/\nRUN wget -q -O /two ${hits.url}/ran/two && cat /src/a.txt >> /two\n`;
    const ctx = await newContext({ Dockerfile: dockerfile, 'src/a.txt': 'uploaded once\n' });
    dirs.push(ctx);
    const remote = async (): Promise<{ build: Build; uploaded: number }> => {
      const client = new KilnClient({ baseUrl: apiNode.url, apiKey: key });
      try {
        const out = await runRemoteBuild({ client, contextDir: ctx, spec: { dockerfile, name: 'app:v1' } });
        assert.equal((out.build as Build).status, 'success', JSON.stringify(out.build));
        return { build: out.build as Build, uploaded: out.upload.bytes };
      } finally {
        client.close();
      }
    };
    const a = await startWorker(await busyboxRoot());
    t.after(() => a.stop());
    const { build: first, uploaded } = await remote();
    assert.ok(uploaded > 0, 'the context went up once');
    assert.deepEqual([hits.count('/ran/one'), hits.count('/ran/two')], [1, 1]);
    // usage: the API node metered the upload, worker A the build and what it pushed to the shared cache
    type Usage = { buildSeconds: number; cacheBytesPushed: number; cacheBytesPulled: number; uploadBytes: number };
    const usage = async (k: string): Promise<Usage> => {
      const r = await api(apiNode.url, k, 'GET', '/v1/usage');
      assert.equal(r.status, 200, r.text);
      return r.body as Usage;
    };
    const idle = team('tpl-idle', 1);
    const u1 = await usage(key);
    assert.ok(u1.buildSeconds > 0, `build seconds (${u1.buildSeconds})`);
    assert.ok(u1.cacheBytesPushed > 0, `bytes pushed to the registry (${u1.cacheBytesPushed})`);
    assert.equal(u1.uploadBytes, uploaded, 'the bytes the client uploaded');
    assert.deepEqual(await usage(idle), { since: 0, buildSeconds: 0, cacheBytesPushed: 0, cacheBytesPulled: 0, uploadBytes: 0 }, 'the other team used nothing');
    assert.equal(await a.stop(), 0, 'worker A stops cleanly on SIGTERM');
    const b = await startWorker(emptyRoot());
    t.after(() => b.stop());
    const { build: second, uploaded: again } = await remote();
    assert.equal(again, 0, 'nothing uploaded the second time');
    assert.deepEqual(ranSteps(second), [], 'every step came from the shared cache');
    assert.deepEqual([hits.count('/ran/one'), hits.count('/ran/two')], [1, 1], 'no RUN executed on B');
    assert.equal(second.result!.digest, first.result!.digest, 'the same image');
    // the client followed both builds' events through the API node, which is told of a worker's lines by NOTIFY
    const listening = await db.query<{ query: string }>("SELECT query FROM pg_stat_activity WHERE application_name = 'kiln-listen'");
    assert.deepEqual(listening.map((r) => r.query), ['LISTEN kiln_build_events'], 'the API node LISTENs for build events');
    const u2 = await usage(key);
    assert.ok(u2.cacheBytesPulled > u1.cacheBytesPulled, `worker B pulled the steps from the registry (${u1.cacheBytesPulled} -> ${u2.cacheBytesPulled} bytes)`);
    assert.ok(u2.buildSeconds > u1.buildSeconds, 'the second build counted too');
    assert.equal(u2.uploadBytes, uploaded, 'nothing more uploaded');
    const rows = await db.query<{ id: string; worker: string }>('SELECT id, worker FROM builds WHERE template = $1 ORDER BY created_at', ['app']);
    assert.equal(rows.length, 2);
    assert.notEqual(rows[0]!.worker, rows[1]!.worker, 'the two builds ran on different workers');
    // the API node serves the template's view from the records (it holds none of the blobs)
    const view = await api(apiNode.url, key, 'GET', '/v1/templates/app');
    assert.equal(view.status, 200, view.text);
    assert.equal((view.body as { digest: string }).digest, first.result!.digest);
    assert.ok((view.body as { size: number }).size > 0);
    // the web view's cache figures come from the store: a second API node with an empty root shows the same
    const other = await startServe(emptyRoot(), ['--database', database, '--workers', '0', '--cache-registry', cacheRef, '--no-local-socket', '--credentials-key-file', keyFile]);
    procs.push(other);
    t.after(() => other.stop());
    type CacheView = { source: string; sizeBytes: number; growth: Array<{ id: string; bytes: number }>; templates: Array<{ name: string; hits: number; steps: number }> };
    const cache = (await api(apiNode.url, key, 'GET', '/ui/api/cache')).body as CacheView;
    assert.equal(cache.source, 'registry');
    assert.equal(cache.sizeBytes, u2.cacheBytesPushed, 'the bytes pushed to the shared cache, as metered');
    assert.deepEqual(cache.growth.map((g) => g.id), rows.map((r) => r.id), 'one point per build');
    assert.equal(cache.growth.at(-1)!.bytes, cache.sizeBytes);
    assert.ok(cache.templates.some((x) => x.name === 'app' && x.hits > 0), JSON.stringify(cache.templates));
    assert.deepEqual((await api(other.url, key, 'GET', '/ui/api/cache')).body, cache, 'every API node shows the same figures');
  });

  test('a private base image: its registry credentials reach the worker sealed, never in plaintext in PostgreSQL, and are dropped at the end', async (t) => {
    if (skip(t)) return;
    const key = team('private', 1);
    const src = await busyboxRoot();
    const pushed = await kiln(['push', '--root', src, 'busybox:latest', `${reg.host}/private/base:1`]);
    assert.equal(pushed.code, 0, pushed.stderr);
    const proxy = await startAuthProxy(reg.host); // Basic auth in front of the registry
    t.after(() => proxy.stop());
    const tpl = Template().fromImage(`${proxy.host}/private/base:1`, { username: AUTH_USER, password: AUTH_PASS }).runCmd('echo private > /p');
    const { defaultContext: _dc, ...template } = (tpl as unknown as Record<symbol, Record<string, unknown>>)[Symbol.for('kiln.template.data')]!;
    const body = { template, context: [], name: 'from-private:1' };
    // an API node without the key refuses it: a worker could not get the credentials
    const keyless = await startServe(emptyRoot(), ['--database', database, '--workers', '0', '--cache-registry', cacheRef, '--no-local-socket']);
    procs.push(keyless);
    const refused = await api(keyless.url, key, 'POST', '/v1/builds', body);
    await keyless.stop();
    assert.equal(refused.status, 409, refused.text);
    assert.equal((refused.body as { error: { code: string } }).error.code, 'ERR_KILN_SERVICE_CREDENTIALS');
    assert.match((refused.body as { error: { message: string } }).error.message, /--credentials-key-file/);
    // queued with no worker running: what PostgreSQL holds is the sealed value only
    const r = await api(apiNode.url, key, 'POST', '/v1/builds', body);
    assert.equal(r.status, 202, r.text);
    const id = (r.body as { id: string }).id;
    assert.ok(!r.text.includes(AUTH_PASS), 'the response does not show them');
    const [queued] = await db.query<{ text: string; request: { template: { base: Record<string, { alg?: string } | undefined> } } }>('SELECT request::text AS text, request FROM builds WHERE id = $1', [id]);
    assert.ok(!queued!.text.includes(AUTH_PASS) && !queued!.text.includes(AUTH_USER), 'no plaintext credentials in the stored request');
    assert.equal(queued!.request.template.base.credentials, undefined);
    assert.equal(queued!.request.template.base.sealedCredentials?.alg, 'A256GCM', 'only the sealed value');
    const w = await startWorker(emptyRoot()); // nothing local: the base must come from the private registry
    t.after(() => w.stop());
    const done = await finished(key, id);
    assert.ok(proxy.seen.includes(`${AUTH_USER}:${AUTH_PASS}`), `the pull authenticated with them (${proxy.seen.join(', ')})`);
    assert.match(done.result!.digest, /^sha256:/);
    const [end] = await db.query<{ request: string }>('SELECT request::text AS request FROM builds WHERE id = $1', [id]);
    assert.ok(!end!.request.includes('sealedCredentials') && !end!.request.includes(AUTH_PASS), 'dropped from the record when the build finished');
    const view = await api(apiNode.url, key, 'GET', `/v1/builds/${id}`);
    assert.ok(!view.text.includes(AUTH_PASS) && !view.text.includes('sealedCredentials'), 'GET build shows neither');
    const [ev] = await db.query<{ n: number }>('SELECT count(*)::int AS n FROM build_events WHERE build_id = $1 AND data::text LIKE $2', [id, `%${AUTH_PASS}%`]);
    assert.equal(ev!.n, 0, 'no event line carries them');
    assert.ok(!apiNode.output().includes(AUTH_PASS) && !w.output().includes(AUTH_PASS), 'no log line carries them');
  });

  test('a worker killed with SIGKILL mid-RUN: the build completes on the other worker, finished steps reused, same digest', async (t) => {
    if (skip(t)) return;
    const key = team('kill', 1);
    // the second RUN sleeps 30 s the first time it runs (the delay is not in the layer), 0 s after
    const dockerfile = (tag: string): string => `FROM busybox\nRUN wget -q -O /first ${hits.url}/ran/first-${tag}\nRUN wget -q -O /second ${hits.url}/ran/second-${tag} && sleep $(wget -q -O- ${hits.url}/delay/${tag}) && echo done > /done\n`;
    const a = await startWorker(await busyboxRoot());
    const sde = { SOURCE_DATE_EPOCH: '1700000000' }; // clamped times: two runs of a RUN make the same layer
    const id = await submit(key, dockerfile('k'), 'killed', sde);
    await hits.waitFor('/delay/k');
    // B (its own root: busybox, no steps) starts while A is in the middle of the second RUN (the first step was
    // pushed when it finished); B also runs the other team's build below, whose base must be local
    const b = await startWorker(await busyboxRoot());
    t.after(() => b.stop());
    await new Promise((r) => setTimeout(r, 500));
    assert.equal(hits.count('/ran/second-k'), 1, 'A is still in the second RUN');
    await a.kill();
    const done = await finished(key, id);
    assert.deepEqual([hits.count('/ran/first-k'), hits.count('/ran/second-k')], [1, 2], 'the first RUN ran once, the second again on B');
    assert.deepEqual(ranSteps(done).map((n) => n.includes('second-k')), [true], 'only the interrupted step ran on B');
    const [row] = await db.query<{ attempt: number }>('SELECT attempt FROM builds WHERE id = $1', [id]);
    assert.equal(row!.attempt, 2, 'a second attempt');
    const events = (await db.query<{ data: { type: string; worker?: string } }>('SELECT data FROM build_events WHERE build_id = $1 ORDER BY seq', [id])).map((r) => r.data);
    assert.equal(events.filter((e) => e.type === 'info' && e.worker).length, 2, 'one worker line per attempt');
    assert.equal(events.filter((e) => e.type === 'finish').length, 1);
    // an uninterrupted build of the same Dockerfile by another team (no shared cache between teams): the same image
    const other = team('kill2', 1);
    const clean = await finished(other, await submit(other, dockerfile('k'), 'killed', sde));
    assert.equal(clean.result!.digest, done.result!.digest, 'identical to an uninterrupted build');
  });

  test('DELETE on the API node cancels a build running on a worker (its RUN is stopped) and one still queued', async (t) => {
    if (skip(t)) return;
    const key = team('cancel', 1);
    const w = await startWorker(await busyboxRoot());
    t.after(() => w.stop());
    const running = await submit(key, `FROM busybox\nRUN sleep $(wget -q -O- ${hits.url}/delay/cancel) && echo finished\n`);
    const queued = await submit(key, 'FROM busybox\nRUN echo never\n');
    await hits.waitFor('/delay/cancel');
    assert.equal((await api(apiNode.url, key, 'DELETE', `/v1/builds/${queued}`)).status, 202);
    assert.equal((await waitBuild(apiNode.url, key, queued)).status, 'cancelled', 'the queued one never runs');
    const t0 = Date.now();
    assert.equal((await api(apiNode.url, key, 'DELETE', `/v1/builds/${running}`)).status, 202);
    const b = await waitBuild(apiNode.url, key, running, 60_000);
    t.diagnostic(`the running build ended ${Date.now() - t0} ms after DELETE`);
    assert.equal(b.status, 'cancelled');
    const [started] = await db.query<{ n: number }>("SELECT count(*)::int AS n FROM build_events WHERE build_id = $1 AND data->>'type' = 'step-start' AND data->>'name' LIKE '%sleep%'", [running]);
    const [ended] = await db.query<{ n: number }>("SELECT count(*)::int AS n FROM build_events WHERE build_id = $1 AND data->>'type' = 'step-done' AND data->>'name' LIKE '%sleep%'", [running]);
    assert.deepEqual([started!.n, ended!.n], [1, 0], 'the RUN started and never finished');
    assert.equal((await api(apiNode.url, key, 'DELETE', `/v1/builds/${running}`)).status, 409, 'a finished build cannot be cancelled');
    const [row] = await db.query<{ n: number }>("SELECT count(*)::int AS n FROM build_events WHERE build_id = $1 AND data->>'type' = 'finish'", [queued]);
    assert.equal(row!.n, 1, 'the queued build has its finish line');
  });

  test('20 builds from two teams run on both workers, each exactly once, within each team\'s limit', async (t) => {
    if (skip(t)) return;
    const ka = team('many-a', 2);
    const kb = team('many-b', 1);
    const w1 = await startWorker(await busyboxRoot(), 2);
    const w2 = await startWorker(await busyboxRoot(), 2);
    t.after(() => Promise.all([w1.stop(), w2.stop()]));
    const ids: Array<[string, string]> = [];
    for (let i = 0; i < 10; i++) {
      for (const [name, key] of [['a', ka], ['b', kb]] as const) {
        ids.push([key, await submit(key, `FROM busybox\nRUN wget -q -O /x ${hits.url}/ran/many-${name}-${i}\n`)]);
      }
    }
    for (const [key, id] of ids) await finished(key, id, 600_000);
    for (let i = 0; i < 10; i++) for (const n of ['a', 'b']) assert.equal(hits.count(`/ran/many-${n}-${i}`), 1, `build ${n}-${i} ran once`);
    const rows = await db.query<{ team: string; worker: string; attempt: number; started: Date; finished: Date }>(
      `SELECT t.name AS team, b.worker, b.attempt, b.started_at AS started, b.finished_at AS finished FROM builds b JOIN teams t ON t.id = b.team_id
        WHERE t.name LIKE 'many-%'`);
    assert.equal(rows.length, 20);
    assert.ok(rows.every((r) => r.attempt === 1), 'no build was started twice');
    const workers = new Set(rows.map((r) => r.worker));
    assert.equal(workers.size, 2, `both workers ran builds: ${[...workers].join(', ')}`);
    const overlap = (team: string): number => {
      const edges = rows.filter((r) => r.team === team).flatMap((r) => [{ t: r.started.getTime(), d: 1 }, { t: r.finished.getTime(), d: -1 }]);
      edges.sort((x, y) => x.t - y.t || x.d - y.d);
      let cur = 0;
      let max = 0;
      for (const e of edges) max = Math.max(max, (cur += e.d));
      return max;
    };
    t.diagnostic(`builds per worker: ${JSON.stringify([...workers].map((w) => [w, rows.filter((r) => r.worker === w).length]))}; max overlap a ${overlap('many-a')}, b ${overlap('many-b')}`);
    assert.ok(overlap('many-a') <= 2, 'team a: at most 2 at once');
    assert.equal(overlap('many-b'), 1, 'team b: one at a time');
  });

  test('a cache mount filled on worker A; a changed package list on a fresh worker B fetches only the new package', async (t) => {
    if (skip(t)) return;
    const key = team('mounts', 1);
    const install = (pkgs: string[]): string => `FROM busybox
RUN --mount=type=cache,target=/var/cache/pkgs sh -c 'for p in ${pkgs.join(' ')}; do [ -f /var/cache/pkgs/$p ] || wget -q -O /var/cache/pkgs/$p ${hits.url}/pkg/$p; done; cat ${pkgs.map((p) => `/var/cache/pkgs/${p}`).join(' ')} | wc -c > /installed'
`;
    const a = await startWorker(await busyboxRoot());
    t.after(() => a.stop());
    let since = hits.mark();
    await finished(key, await submit(key, install(['a', 'b'])));
    assert.deepEqual(hits.pkgBytes(since).map((p) => p.name).sort(), ['a', 'b']);
    await a.stop();
    const b = await startWorker(emptyRoot());
    t.after(() => b.stop());
    since = hits.mark();
    const second = await finished(key, await submit(key, install(['a', 'b', 'c'])));
    assert.equal(ranSteps(second).length, 1, 'the changed step ran');
    const fetched = hits.pkgBytes(since);
    assert.deepEqual(fetched, [{ name: 'c', bytes: 25_000 }], 'only the new package was downloaded');
  });
});
