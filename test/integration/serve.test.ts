/**
 * `kiln serve` against a real server child process on a free loopback port with a real temp state root: auth,
 * schemas, team isolation, the SDK's remote build with content-addressed uploads, SSE resumption, cancel,
 * SIGKILL recovery, /v2/ through skopeo, the OpenAPI document, the CLI (`--host`, `template ls`, local hand-off).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, promises as fsp, readFileSync } from 'node:fs';
import http, { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { cleanup, imageFiles, kiln, newContext, newRoot, repoRoot, requireIntegration } from '../helpers/kiln.js';
import { api, leftovers, newTeamKey, startServe, waitBuild, type ServeProcess } from '../helpers/serve.js';
import { KilnClient, runRemoteBuild } from '../../src/client/index.js';
import { Template } from '../../src/api/index.js';

interface Build { id: string; status: string; result: { steps: Array<{ name: string; cached: boolean }>; digest: string } | null; error: string | null }

/** A Dockerfile build through the client library: manifest, missing digests, uploads, POST /v1/builds. */
async function dockerfileBuild(url: string, key: string, ctx: string, name?: string, follow = true): Promise<{ build: Build; uploaded: number }> {
  const client = new KilnClient({ baseUrl: url, apiKey: key });
  try {
    const out = await runRemoteBuild({ client, contextDir: ctx, spec: { dockerfile: readFileSync(path.join(ctx, 'Dockerfile'), 'utf8'), ...(name ? { name } : {}) }, background: !follow });
    return { build: (follow ? out.build : out.build) as Build, uploaded: out.upload.bytes };
  } finally {
    client.close();
  }
}

/**
 * Read SSE events of a build from `after` until `stop` says so (a count of events, or a test of the events so far;
 * then the connection is dropped) or the stream ends.
 */
function readEvents(url: string, key: string, id: string, after: number, stop: number | ((got: Array<{ id: number; data: string }>) => boolean) = Infinity): Promise<Array<{ id: number; data: string }>> {
  const enough = typeof stop === 'number' ? (g: unknown[]) => g.length >= stop : stop;
  return new Promise((resolve, reject) => {
    const u = new URL(`${url}/v1/builds/${id}/events`);
    const got: Array<{ id: number; data: string }> = [];
    const req = http.get({ host: u.hostname, port: u.port, path: u.pathname, headers: { authorization: `Bearer ${key}`, ...(after ? { 'last-event-id': String(after) } : {}) } }, (res) => {
      let buf = '';
      let cur: { id?: number; data?: string } = {};
      res.on('data', (c: Buffer) => {
        buf += c.toString();
        let nl: number;
        while ((nl = buf.indexOf('\n')) >= 0) {
          const line = buf.slice(0, nl);
          buf = buf.slice(nl + 1);
          if (line === '') {
            if (cur.data !== undefined) got.push({ id: cur.id!, data: cur.data });
            cur = {};
            if (enough(got)) {
              req.destroy();
              resolve(got);
              return;
            }
          } else if (line.startsWith('data: ')) cur.data = line.slice(6);
          else if (line.startsWith('id: ')) cur.id = Number(line.slice(4));
        }
      });
      res.on('end', () => resolve(got));
      res.on('error', () => resolve(got));
    });
    req.on('error', (e) => (enough(got) ? resolve(got) : reject(e)));
  });
}

describe('kiln serve', () => {
  let root: string;
  let server: ServeProcess | undefined;
  let keyA: string;
  let keyB: string;
  const dirs: string[] = [];
  let ok = true;

  before(async (t) => {
    ok = requireIntegration(t as never);
    if (!ok) return;
    root = await newRoot();
    keyA = newTeamKey(root, 'alpha');
    keyB = newTeamKey(root, 'beta');
    server = await startServe(root, ['--max-builds', '3']);
  });

  after(async () => {
    await server?.stop();
    await cleanup(...(root ? [root] : []), ...dirs);
  });

  test('health needs no key; no key, a wrong key and a revoked key get 401 with a JSON body and nothing is built', async (t) => {
    if (!ok) return t.skip('integration');
    const url = server!.url;
    assert.equal((await api(url, undefined, 'GET', '/health')).status, 200);
    const body = { dockerfile: 'FROM busybox:latest\nRUN echo never > /x\n', context: [], name: 'never' };
    const revoked = newTeamKey(root, 'alpha');
    const ls = kiln(['--root', root, 'admin', 'key', 'ls', '--team', 'alpha']);
    const id = /^kiln_(k[0-9a-f]+)_/.exec(revoked)![1]!;
    assert.match((await ls).stdout, new RegExp(id));
    const rv = await kiln(['--root', root, 'admin', 'key', 'revoke', id]);
    assert.equal(rv.code, 0, rv.stderr);
    assert.doesNotMatch(readFileSync(path.join(root, 'service.db')).toString('latin1'), new RegExp(revoked), 'only the hash of a key is stored');
    for (const key of [undefined, 'kiln_nope_nope', revoked]) {
      for (const [method, p] of [['POST', '/v1/builds'], ['GET', '/v1/templates'], ['GET', '/v1/builds/x'], ['GET', '/openapi.json'], ['GET', '/v2/never/manifests/latest']] as const) {
        const r = await api(url, key, method, p, method === 'POST' ? body : undefined);
        assert.equal(r.status, 401, `${method} ${p} with ${key ?? 'no key'}`);
        assert.equal((r.body as { error: { code: string } }).error.code, 'ERR_KILN_SERVICE_AUTH');
        assert.doesNotMatch(r.text, /at .*\.js:\d+/);
      }
    }
    const list = await api(url, keyA, 'GET', '/v1/templates');
    assert.deepEqual((list.body as { templates: Array<{ name: string }> }).templates.filter((x) => x.name === 'never'), []);
  });

  test('a malformed body is 400 naming the field; a digest mismatch on upload is 400 and stores nothing', async (t) => {
    if (!ok) return t.skip('integration');
    const url = server!.url;
    const bad = await api(url, keyA, 'POST', '/v1/builds', { dockerfile: 'FROM busybox:latest\n', context: [{ path: 'a', type: 'file', mode: 'rw' }] });
    assert.equal(bad.status, 400);
    assert.equal((bad.body as { error: { field: string } }).error.field, 'context.0.mode');
    const notJson = await api(url, keyA, 'POST', '/v1/builds', '{"dockerfile":');
    assert.equal(notJson.status, 400);
    assert.equal((notJson.body as { error: { code: string } }).error.code, 'ERR_KILN_SERVICE_REQUEST');
    const both = await api(url, keyA, 'POST', '/v1/builds', { context: [] });
    assert.equal(both.status, 400);
    assert.match((both.body as { error: { message: string } }).error.message, /template.*dockerfile/);
    const digest = `sha256:${'ab'.repeat(32)}`;
    const put = await fetch(`${url}/v1/uploads/${digest}`, { method: 'PUT', headers: { authorization: `Bearer ${keyA}` }, body: 'not those bytes' });
    assert.equal(put.status, 400);
    assert.equal(((await put.json()) as { error: { code: string } }).error.code, 'ERR_KILN_UPLOAD_DIGEST');
    const miss = await api(url, keyA, 'POST', '/v1/uploads/missing', { blobs: [{ digest, size: 15 }] });
    assert.deepEqual((miss.body as { missing: string[] }).missing, [digest]);
    // a dropped upload stores nothing; asking again names the digest, and the retry completes it
    const bytes = Buffer.alloc(3 * 1024 * 1024, 7);
    const good = `sha256:${(await import('node:crypto')).createHash('sha256').update(bytes).digest('hex')}`;
    await new Promise<void>((resolve) => {
      const u = new URL(url);
      const req = http.request({ host: u.hostname, port: u.port, method: 'PUT', path: `/v1/uploads/${good}`, headers: { authorization: `Bearer ${keyA}`, 'content-length': String(bytes.length) } });
      req.on('error', () => resolve());
      req.write(bytes.subarray(0, 1024 * 1024), () => setTimeout(() => { req.destroy(); resolve(); }, 200));
    });
    const again = await api(url, keyA, 'POST', '/v1/uploads/missing', { blobs: [{ digest: good, size: bytes.length }] });
    assert.deepEqual((again.body as { missing: string[] }).missing, [good]);
    const retry = await fetch(`${url}/v1/uploads/${good}`, { method: 'PUT', headers: { authorization: `Bearer ${keyA}` }, body: bytes });
    assert.equal(retry.status, 201);
    const done = await api(url, keyA, 'POST', '/v1/uploads/missing', { blobs: [{ digest: good, size: bytes.length }] });
    assert.deepEqual((done.body as { missing: string[] }).missing, []);
    const ingest = (await fsp.readdir(path.join(root, 'teams'))).map((id) => path.join(root, 'teams', id, 'uploads', 'ingest'));
    for (const d of ingest) assert.deepEqual(await fsp.readdir(d), [], 'no temp file of the dropped upload is left');
    const notUploaded = await api(url, keyA, 'POST', '/v1/builds', { dockerfile: 'FROM busybox:latest\nCOPY a /a\n', context: [{ path: 'a', type: 'file', mode: 0o644, size: 15, digest }] });
    assert.equal(notUploaded.status, 400);
    assert.deepEqual((notUploaded.body as { error: { missing: string[] } }).error.missing, [digest]);
  });

  test('docs/openapi.json is what the server serves', async (t) => {
    if (!ok) return t.skip('integration');
    const served = await api(server!.url, keyA, 'GET', '/openapi.json');
    assert.equal(served.status, 200);
    assert.deepEqual(served.body, JSON.parse(readFileSync(path.join(repoRoot, 'docs', 'openapi.json'), 'utf8')));
  });

  test('two teams: B gets no cache hit on A\'s records and cannot read A\'s template, build, events or blobs', async (t) => {
    if (!ok) return t.skip('integration');
    const url = server!.url;
    const ctx = await newContext({ Dockerfile: 'FROM busybox:latest\nCOPY f /f\nRUN cat /f > /g && head -c 16 /dev/urandom | od -x > /stamp\n', f: 'same\n' });
    dirs.push(ctx);
    const a = await dockerfileBuild(url, keyA, ctx, 'shared');
    assert.equal(a.build.status, 'success', a.build.error ?? '');
    const a2 = await dockerfileBuild(url, keyA, ctx, 'shared');
    assert.deepEqual(a2.build.result!.steps.map((s) => s.cached), [true, true, true], 'A\'s rebuild is cached');
    assert.equal(a2.uploaded, 0);
    const b = await dockerfileBuild(url, keyB, ctx, 'shared');
    assert.equal(b.build.status, 'success');
    assert.deepEqual(b.build.result!.steps.slice(1).map((s) => s.cached), [false, false], 'B\'s first build is not a hit on A\'s records');
    assert.ok(b.uploaded > 0, 'B uploads its own copy of the context');
    // by guessing ids and digests
    assert.equal((await api(url, keyB, 'GET', `/v1/builds/${a.build.id}`)).status, 404, 'check 1');
    assert.equal((await api(url, keyB, 'GET', `/v1/builds/${a.build.id}/events`)).status, 404, 'check 2');
    assert.equal((await api(url, keyB, 'DELETE', `/v1/builds/${a.build.id}`)).status, 404, 'check 3');
    const aName = await api(url, keyA, 'GET', '/v1/templates/shared');
    const aDigest = (aName.body as { digest: string }).digest;
    const bView = await api(url, keyB, 'GET', '/v1/templates/shared');
    assert.notEqual((bView.body as { digest: string }).digest, aDigest, 'B sees only its own template of that name');
    const aManifest = (await api(url, keyA, 'GET', `/v2/shared/manifests/${aDigest}`)).body as { layers: Array<{ digest: string }> };
    const aRunLayer = aManifest.layers.at(-1)!.digest;
    assert.equal((await fetch(`${url}/v2/shared/blobs/${aRunLayer}`, { headers: { authorization: `Bearer ${keyA}` } })).status, 200, 'check 4');
    assert.equal((await fetch(`${url}/v2/shared/blobs/${aRunLayer}`, { headers: { authorization: `Bearer ${keyB}` } })).status, 404, 'check 5');
    assert.equal((await fetch(`${url}/v2/shared/manifests/${aDigest}`, { headers: { authorization: `Bearer ${keyB}` } })).status, 404, 'check 6');
    const only = await dockerfileBuild(url, keyA, ctx, 'alpha-only');
    assert.equal(only.build.status, 'success');
    assert.equal((await api(url, keyB, 'GET', '/v1/templates/alpha-only')).status, 404, 'check 7');
    assert.ok(!((await api(url, keyB, 'GET', '/v1/templates')).body as { templates: Array<{ name: string }> }).templates.some((x) => x.name === 'alpha-only'));
    assert.equal((await api(url, keyB, 'DELETE', '/v1/templates/alpha-only')).status, 404, 'check 8');
    assert.equal((await api(url, keyA, 'GET', '/v1/templates/alpha-only')).status, 200, 'B\'s delete did not touch A\'s template');
    // an upload of A is not a blob B can fetch through /v2/ (nor A: uploads are not image content)
    const fDigest = `sha256:${(await import('node:crypto')).createHash('sha256').update('same\n').digest('hex')}`;
    assert.equal((await fetch(`${url}/v2/shared/blobs/${fDigest}`, { headers: { authorization: `Bearer ${keyA}` } })).status, 404, 'check 9');
  });

  test('usage on the SQLite store: build seconds and upload bytes of the team since a time; another team has none; startedBy is the key id', async (t) => {
    if (!ok) return t.skip('integration');
    const url = server!.url;
    const since = Date.now();
    const ctx = await newContext({ Dockerfile: 'FROM busybox:latest\nCOPY data /data\nRUN wc -c /data > /size\n', data: `metered ${since}\n${'x'.repeat(5000)}` });
    dirs.push(ctx);
    const a = await dockerfileBuild(url, keyA, ctx, 'metered');
    assert.equal(a.build.status, 'success', a.build.error ?? '');
    assert.ok(a.uploaded > 5000, `the context went up (${a.uploaded} bytes)`);
    // who started it: the key's id, kept with the build
    const view = await api(url, keyA, 'GET', `/v1/builds/${a.build.id}`);
    assert.equal((view.body as { startedBy: string | null }).startedBy, /^kiln_(k[0-9a-f]+)_/.exec(keyA)![1], 'startedBy is the key id');
    const usage = await api(url, keyA, 'GET', `/v1/usage?since=${since}`);
    assert.equal(usage.status, 200, usage.text);
    const u = usage.body as { since: number; buildSeconds: number; cacheBytesPushed: number; cacheBytesPulled: number; uploadBytes: number };
    assert.equal(u.since, since);
    assert.equal(u.uploadBytes, a.uploaded, 'the bytes this build uploaded');
    assert.ok(u.buildSeconds > 0, `build seconds counted (${u.buildSeconds})`);
    assert.deepEqual([u.cacheBytesPushed, u.cacheBytesPulled], [0, 0], 'no shared registry cache on this server');
    const iso = await api(url, keyA, 'GET', `/v1/usage?since=${encodeURIComponent(new Date(since).toISOString())}`);
    assert.equal((iso.body as { uploadBytes: number }).uploadBytes, a.uploaded, 'an ISO time works as well');
    const later = await api(url, keyA, 'GET', `/v1/usage?since=${Date.now() + 60_000}`);
    assert.deepEqual(later.body, { since: (later.body as { since: number }).since, buildSeconds: 0, cacheBytesPushed: 0, cacheBytesPulled: 0, uploadBytes: 0 });
    const all = (await api(url, keyA, 'GET', '/v1/usage')).body as { since: number; uploadBytes: number };
    assert.equal(all.since, 0);
    assert.ok(all.uploadBytes >= a.uploaded);
    const keyC = newTeamKey(root, 'gamma');
    assert.deepEqual((await api(url, keyC, 'GET', '/v1/usage')).body, { since: 0, buildSeconds: 0, cacheBytesPushed: 0, cacheBytesPulled: 0, uploadBytes: 0 }, 'a team that did nothing used nothing');
    const bad = await api(url, keyA, 'GET', '/v1/usage?since=yesterday');
    assert.equal(bad.status, 400, bad.text);
    assert.equal((bad.body as { error: { code: string } }).error.code, 'ERR_KILN_SERVICE_REQUEST');
  });

  test('SDK remote build with copy(): cold, unchanged (0 bytes, every step cached), one file changed (only it uploaded)', async (t) => {
    if (!ok) return t.skip('integration');
    const url = server!.url;
    const ctx = await newContext({ 'app/main.txt': 'main v1\n', 'app/util.txt': 'util\n', 'app/big.bin': 'x'.repeat(100_000), 'unread.txt': 'not copied\n' });
    dirs.push(ctx);
    const tpl = Template().fromImage('busybox:latest').copy('app/', '/app/').runCmd('cat /app/main.txt /app/util.txt > /joined').setStartCmd('sleep infinity');
    const clientRoot = mkdtempSync(path.join(tmpdir(), 'kiln-client-'));
    dirs.push(clientRoot);
    const opts = { name: 'sdk-app', apiKey: keyA, baseUrl: url, contextPath: ctx, root: clientRoot };
    const logs: string[] = [];
    const cold = await Template.build(tpl, { ...opts, onBuildLogs: (l) => logs.push(l.message) });
    assert.equal(cold.name, 'sdk-app:latest');
    assert.equal(cold.remote!.uploadedFiles, 3);
    assert.equal(cold.remote!.uploadedBytes, 'main v1\n'.length + 'util\n'.length + 100_000, 'only what copy() reads is uploaded');
    assert.ok(cold.steps.some((s) => !s.cached));
    assert.equal((await fsp.readdir(path.join(clientRoot, 'client-digests'))).length, 1, 'the client keeps its digests under its state root');
    const warm = await Template.build(tpl, opts);
    assert.equal(warm.remote!.uploadedBytes, 0);
    assert.equal(warm.remote!.uploadedFiles, 0);
    assert.ok(warm.steps.every((s) => s.cached), JSON.stringify(warm.steps));
    assert.equal(warm.digest, cold.digest);
    await fsp.writeFile(path.join(ctx, 'app', 'main.txt'), 'main v2\n');
    const one = await Template.build(tpl, opts);
    assert.equal(one.remote!.uploadedFiles, 1);
    assert.equal(one.remote!.uploadedBytes, 'main v2\n'.length);
    assert.notEqual(one.digest, cold.digest);
    assert.equal(one.steps.find((s) => s.name.includes('COPY'))!.cached, false);
    assert.equal(await Template.exists('sdk-app', { apiKey: keyA, baseUrl: url }), true);
    assert.equal(await Template.exists('sdk-app', { apiKey: keyB, baseUrl: url }), false);
    assert.ok((await Template.list({ apiKey: keyA, baseUrl: url })).some((x) => x.name === 'sdk-app'));
    const detail = await api(url, keyA, 'GET', '/v1/templates/sdk-app');
    const d = detail.body as { digest: string; size: number; startCmd: string[]; steps: unknown[]; lastBuild: { id: string } };
    assert.equal(d.digest, one.digest);
    assert.ok(d.size > 100_000);
    assert.deepEqual(d.startCmd, ['/bin/sh', '-c', 'sleep infinity']);
    assert.equal(d.lastBuild.id, one.remote!.buildId);
    const bg = await Template.buildInBackground(tpl, opts);
    const st = await waitBuild(url, keyA, bg.buildId);
    assert.equal(st.status, 'success');
    const status = await Template.getBuildStatus(bg, { apiKey: keyA, baseUrl: url });
    assert.equal(status.status, 'ready', JSON.stringify(status));
    assert.equal(status.buildId, bg.buildId);
    assert.equal(await Template.delete('sdk-app', { apiKey: keyA, baseUrl: url }), true);
    assert.equal(await Template.exists('sdk-app', { apiKey: keyA, baseUrl: url }), false);
  });

  test('SSE: a dropped connection resumed with Last-Event-ID loses and repeats nothing', async (t) => {
    if (!ok) return t.skip('integration');
    const url = server!.url;
    const ctx = await newContext({ Dockerfile: `FROM busybox:latest\nRUN for i in 1 2 3 4 5 6; do echo line $i; sleep 0.2; done; echo ${Date.now()}\n` });
    dirs.push(ctx);
    const { build } = await dockerfileBuild(url, keyA, ctx, undefined, false);
    const first = await readEvents(url, keyA, build.id, 0, 3);
    assert.equal(first.length, 3);
    const rest = await readEvents(url, keyA, build.id, first.at(-1)!.id);
    const all = [...first, ...rest];
    assert.match(all.at(-1)!.data, /"type":"finish"/);
    const replay = await readEvents(url, keyA, build.id, 0);
    assert.deepEqual(all, replay, 'the resumed stream equals the whole stream');
    assert.deepEqual(all.map((e) => e.id), all.map((_, i) => i + 1));
    const logged = all.filter((e) => e.data.includes('"type":"log"')).map((e) => (JSON.parse(e.data) as { data: string }).data).join('');
    assert.deepEqual(logged.match(/line \d/g), ['line 1', 'line 2', 'line 3', 'line 4', 'line 5', 'line 6']);
  });

  test('cancel: the RUN container is killed, no container or mount is left, the store stays usable', async (t) => {
    if (!ok) return t.skip('integration');
    const url = server!.url;
    const ctx = await newContext({ Dockerfile: `FROM busybox:latest\nRUN echo started; sleep 60 # ${Date.now()}\n` });
    dirs.push(ctx);
    const { build } = await dockerfileBuild(url, keyA, ctx, 'cancelled', false);
    await readEvents(url, keyA, build.id, 0, (g) => g.some((e) => e.data.includes('"data":"started')));
    const t0 = Date.now();
    const del = await api(url, keyA, 'DELETE', `/v1/builds/${build.id}`);
    assert.equal(del.status, 202);
    const done = await waitBuild(url, keyA, build.id, 30_000);
    assert.equal(done.status, 'cancelled');
    assert.ok(Date.now() - t0 < 20_000, 'the sleep 60 was killed');
    assert.deepEqual(leftovers(root), { mounts: [], containers: [] });
    assert.equal((await api(url, keyA, 'DELETE', `/v1/builds/${build.id}`)).status, 409);
    const next = await dockerfileBuild(url, keyA, await newContext({ Dockerfile: 'FROM busybox:latest\nRUN echo fine > /ok\n' }), 'after-cancel');
    assert.equal(next.build.status, 'success');
  });

  test('skopeo inspect and skopeo copy of a template through /v2/ with the key', async (t) => {
    if (!ok) return t.skip('integration');
    const url = server!.url;
    const ctx = await newContext({ Dockerfile: 'FROM busybox:latest\nCOPY f /f\n', f: 'pull me\n' });
    dirs.push(ctx);
    const { build } = await dockerfileBuild(url, keyA, ctx, 'pullme:v1');
    assert.equal(build.status, 'success');
    const hostPort = url.replace('http://', '');
    const insp = spawnSync('skopeo', ['inspect', '--tls-verify=false', '--creds', `kiln:${keyA}`, `docker://${hostPort}/pullme:v1`], { encoding: 'utf8' });
    assert.equal(insp.status, 0, insp.stderr);
    assert.equal((JSON.parse(insp.stdout) as { Digest: string }).Digest, build.result!.digest);
    const noKey = spawnSync('skopeo', ['inspect', '--tls-verify=false', `docker://${hostPort}/pullme:v1`], { encoding: 'utf8' });
    assert.notEqual(noKey.status, 0);
    const otherTeam = spawnSync('skopeo', ['inspect', '--tls-verify=false', '--creds', `kiln:${keyB}`, `docker://${hostPort}/pullme:v1`], { encoding: 'utf8' });
    assert.notEqual(otherTeam.status, 0);
    const dest = mkdtempSync(path.join(tmpdir(), 'kiln-skopeo-'));
    dirs.push(dest);
    const copy = spawnSync('skopeo', ['copy', '--src-tls-verify=false', '--src-creds', `kiln:${keyA}`, `docker://${hostPort}/pullme:v1`, `oci:${dest}:v1`], { encoding: 'utf8' });
    assert.equal(copy.status, 0, copy.stderr);
    const index = JSON.parse(readFileSync(path.join(dest, 'index.json'), 'utf8')) as { manifests: Array<{ digest: string }> };
    assert.equal(index.manifests[0]!.digest, build.result!.digest);
  });

  test('CLI: kiln --host build with the same progress display, template ls|inspect|rm; metrics', async (t) => {
    if (!ok) return t.skip('integration');
    const url = server!.url;
    const ctx = await newContext({ Dockerfile: 'FROM busybox:latest\nCOPY f /f\nRUN cat /f\n', f: 'cli\n' });
    dirs.push(ctx);
    const env = { KILN_API_KEY: keyA };
    const clientRoot = mkdtempSync(path.join(tmpdir(), 'kiln-client-'));
    dirs.push(clientRoot);
    const b1 = await kiln(['--root', clientRoot, '--host', url, 'build', '-t', 'cli-tpl', '--progress=plain', ctx], { env });
    assert.equal(b1.code, 0, b1.stderr);
    assert.match(b1.stderr, /building on kiln serve at/);
    assert.match(b1.stderr, /#3 \[3\/3\] RUN cat \/f/);
    const b2 = await kiln(['--root', clientRoot, 'build', '-t', 'cli-tpl', '--progress=plain', ctx], { env: { ...env, KILN_HOST: url } });
    assert.equal(b2.code, 0, b2.stderr);
    assert.match(b2.stderr, /uploaded 0 file\(s\), 0B/);
    assert.equal((b2.stderr.match(/CACHED/g) ?? []).length, 3);
    const ls = await kiln(['--host', url, 'template', 'ls'], { env });
    assert.match(ls.stdout, /cli-tpl\tlatest/);
    const insp = await kiln(['--host', url, 'template', 'inspect', 'cli-tpl'], { env });
    assert.equal((JSON.parse(insp.stdout) as { name: string }).name, 'cli-tpl');
    const rm = await kiln(['--host', url, 'template', 'rm', 'cli-tpl'], { env });
    assert.equal(rm.code, 0, rm.stderr);
    const gone = await kiln(['--host', url, 'template', 'inspect', 'cli-tpl'], { env });
    assert.equal(gone.code, 1);
    assert.match(gone.stderr, /no template/);
    const bad = await kiln(['--host', url, 'template', 'ls'], { env: { KILN_API_KEY: 'wrong' } });
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /ERR_KILN_SERVICE_AUTH/);
    const fail = await kiln(['--root', clientRoot, '--host', url, 'build', '--progress=plain', await newContext({ Dockerfile: 'FROM busybox:latest\nRUN exit 7\n' })], { env });
    assert.equal(fail.code, 1, 'a failed remote build exits non-zero');
    const metrics = await fetch(`${url}/metrics`, { headers: { authorization: `Bearer ${keyA}` } });
    const text = await metrics.text();
    assert.match(text, /kiln_builds_total\{result="success"\} \d+/);
    assert.match(text, /kiln_step_cache_hits_total \d+/);
    assert.match(text, /kiln_upload_bytes_saved_total \d+/);
    assert.match(text, /kiln_build_queue_length 0/);
    assert.match(text, /kiln_build_duration_seconds_bucket/);
    assert.match(server!.output(), /"msg":"build","team":"alpha","teamId":"[^"]+","buildId":"[^"]+","status":"success","durationMs":\d+,"cachedSteps":\d+,"totalSteps":\d+/);
  });

  test('a remote build\'s RUN cannot reach the host\'s 127.0.0.1 (isolated network, the default of kiln serve); RUN --network=host is refused', async (t) => {
    if (!ok) return t.skip('integration');
    const url = server!.url;
    const probe = createServer((_req, res) => res.end('host-loopback-secret\n'));
    await new Promise<void>((r) => probe.listen(0, '127.0.0.1', () => r()));
    const port = (probe.address() as AddressInfo).port;
    try {
      // busybox's wget crashes on this machine; nc speaks the request. Both outcomes are printed so the test can tell.
      const get = `printf 'GET / HTTP/1.0\\r\\n\\r\\n' | timeout 5 nc 127.0.0.1 ${port} | sed s/^/got-/`;
      const ctx = await newContext({ Dockerfile: `FROM busybox:latest\nRUN ${get}\n` });
      dirs.push(ctx);
      const clientRoot = mkdtempSync(path.join(tmpdir(), 'kiln-client-'));
      dirs.push(clientRoot);
      const remote = await kiln(['--root', clientRoot, '--host', url, 'build', '--progress=plain', ctx], { env: { KILN_API_KEY: keyA } });
      assert.equal(remote.code, 0, remote.stderr);
      assert.match(remote.stderr, /RUN printf/);
      assert.doesNotMatch(remote.stderr, /got-host-loopback-secret/);
      // the same Dockerfile in-process (Docker's default host network for local builds) does reach it: the probe works
      const local = await kiln(['--root', root, 'build', '--no-daemon', '--no-cache', '--progress=plain', ctx]);
      assert.equal(local.code, 0, local.stderr);
      assert.match(local.stderr, /got-host-loopback-secret/);
      const hostNet = await newContext({ Dockerfile: 'FROM busybox:latest\nRUN --network=host true\n' });
      dirs.push(hostNet);
      const refused = await kiln(['--root', clientRoot, '--host', url, 'build', '--progress=plain', hostNet], { env: { KILN_API_KEY: keyA } });
      assert.equal(refused.code, 1, refused.stderr);
      assert.match(refused.stderr, /RUN --network=host is not allowed/);
    } finally {
      probe.close();
    }
  });

  test('local hand-off: plain kiln build goes to the server on ROOT/kiln.sock and says so; --no-daemon builds in-process', async (t) => {
    if (!ok) return t.skip('integration');
    const ctx = await newContext({ Dockerfile: 'FROM busybox:latest\nCOPY f /f\nRUN cat /f\n', f: 'local\n' });
    dirs.push(ctx);
    const h = await kiln(['--root', root, 'build', '-t', 'handed:1', '--progress=plain', ctx]);
    assert.equal(h.code, 0, h.stderr);
    assert.match(h.stderr, /handing the build to kiln serve/);
    const again = await kiln(['--root', root, 'build', '-t', 'handed:1', '--progress=plain', ctx]);
    assert.equal((again.stderr.match(/CACHED/g) ?? []).length, 3);
    const inproc = await kiln(['--root', root, 'build', '--no-daemon', '-t', 'handed:1', '--progress=plain', ctx]);
    assert.equal(inproc.code, 0, inproc.stderr);
    assert.doesNotMatch(inproc.stderr, /handing/);
    assert.equal((inproc.stderr.match(/CACHED/g) ?? []).length, 3, 'the same cache: the server built in ROOT');
    // the lean entry (a hand-off without the full CLI) writes what an in-process build writes
    const metaHanded = path.join(ctx, '..', `${path.basename(ctx)}-handed.json`);
    const metaInproc = path.join(ctx, '..', `${path.basename(ctx)}-inproc.json`);
    const q = await kiln(['--root', root, 'build', '-q', '--metadata-file', metaHanded, '-t', 'handed:1', ctx]);
    assert.equal(q.code, 0, q.stderr);
    const inprocQ = await kiln(['--root', root, 'build', '--no-daemon', '-q', '--metadata-file', metaInproc, '-t', 'handed:1', ctx]);
    assert.equal(q.stdout, inprocQ.stdout, 'the same digest on stdout');
    assert.match(q.stdout, /^sha256:[0-9a-f]{64}\n$/);
    const handedMeta = JSON.parse(await fsp.readFile(metaHanded, 'utf8')) as Record<string, unknown>;
    const inprocMeta = JSON.parse(await fsp.readFile(metaInproc, 'utf8')) as Record<string, unknown>;
    await fsp.rm(metaHanded);
    await fsp.rm(metaInproc);
    assert.deepEqual(Object.keys(handedMeta), Object.keys(inprocMeta));
    assert.equal(handedMeta['containerimage.digest'], inprocMeta['containerimage.digest']);
    assert.deepEqual((handedMeta['kiln.steps'] as Array<{ cached: boolean }>).map((x) => x.cached), [true, true, true]);
    // a spelling the lean entry does not take (-tNAME): the full CLI parses it and hands it off as before
    const full = await kiln(['--root', root, 'build', '--progress=plain', '-thanded:1', ctx]);
    assert.equal(full.code, 0, full.stderr);
    assert.match(full.stderr, /handing the build to kiln serve/);
    // every --network mode is handed off and gives the RUN the network an in-process build gives it
    const netCtx = await newContext({ Dockerfile: 'FROM busybox:latest\nRUN echo "NETS=$(tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d \' \' | sort | tr \'\\n\' ,)"\n' });
    dirs.push(netCtx);
    const netsOf = (out: string): string => out.match(/NETS=((?:[\w.@-]+,)+)/)?.[1] ?? `no NETS line in: ${out}`;
    const seen: Record<string, string> = {};
    for (const mode of ['host', 'isolated', 'none']) {
      const handed = await kiln(['--root', root, 'build', '--no-cache', '--progress=plain', `--network=${mode}`, netCtx]);
      assert.equal(handed.code, 0, handed.stderr);
      assert.match(handed.stderr, /handing the build to kiln serve/, mode);
      const here = await kiln(['--root', root, 'build', '--no-daemon', '--no-cache', '--progress=plain', `--network=${mode}`, netCtx]);
      assert.equal(here.code, 0, here.stderr);
      assert.equal(netsOf(handed.stderr), netsOf(here.stderr), `--network=${mode}: the server's RUN sees the interfaces an in-process RUN sees`);
      seen[mode] = netsOf(handed.stderr);
    }
    assert.equal(seen.none, 'lo,');
    assert.notEqual(seen.isolated, seen.host, 'isolated is its own namespace, not the host\'s');
    assert.notEqual(seen.isolated, seen.none);
    const failCtx = await newContext({ Dockerfile: 'FROM busybox:latest\nRUN exit 4\n' });
    dirs.push(failCtx);
    const fail = await kiln(['--root', root, 'build', '--progress=plain', failCtx]);
    assert.equal(fail.code, 1);
    assert.match(fail.stderr, /exit code 4/);
  });

  test('local hand-off of a template: its steps cross as text and build the image an in-process build makes; a step text cannot carry builds in-process', async (t) => {
    if (!ok) return t.skip('integration');
    const sdk = path.join(repoRoot, 'dist', 'api', 'index.js');
    const ctx = await newContext({ 'my file.txt': 'spaced ü\n' });
    dirs.push(ctx);
    const stamp = Date.now();
    await fsp.writeFile(path.join(ctx, 'template.ts'), [
      `import { Template } from ${JSON.stringify(sdk)};`,
      'export default Template().fromImage("busybox:latest")',
      '  .copy("my file.txt", "/dst dir/")',
      `  .setEnvs({ A: ${JSON.stringify(`it's "q" \\ $HOME ${stamp}`)}, B: "x = y" })`,
      `  .runCmd(${JSON.stringify('echo "$A|$B" > "/dst dir/env.txt"; echo \'${X:-y}\' >> "/dst dir/env.txt"')})`,
      `  .runCmd(${JSON.stringify('set -e\nprintf "%s\\n" "multi line" > /tmp/ml.txt\necho \'$HOME\' >> /tmp/ml.txt')}, { user: "nobody" });`,
      '',
    ].join('\n'));
    const file = path.join(ctx, 'template.ts');
    const handed = await kiln(['--root', root, 'build', '--progress=plain', '-t', 'tpl-handed:1', file]);
    assert.equal(handed.code, 0, handed.stderr);
    assert.match(handed.stderr, /handing the build to kiln serve/);
    const q = await kiln(['--root', root, 'build', '-q', '-t', 'tpl-handed:1', file]);
    const inproc = await kiln(['--root', root, 'build', '--no-daemon', '-q', '-t', 'tpl-handed:1', file]);
    assert.equal(q.code, 0, q.stderr);
    assert.equal(inproc.code, 0, inproc.stderr);
    assert.match(q.stdout, /^sha256:[0-9a-f]{64}\n$/);
    assert.equal(q.stdout, inproc.stdout, 'the hand-off built the image the records build in-process');
    const files = await imageFiles(root, q.stdout.trim());
    assert.deepEqual(['dst dir/my file.txt', 'dst dir/env.txt', 'tmp/ml.txt'].map((f) => files.get(f)?.content), [
      'spaced ü\n', `it's "q" \\  ${stamp}|x = y\n\${X:-y}\n`, 'multi line\n$HOME\n',
    ]);
    // a script ending in the escape character: as text it would continue the line, so the step stays in the process
    await fsp.writeFile(path.join(ctx, 'trailing.ts'), `import { Template } from ${JSON.stringify(sdk)};\nexport default Template().fromImage("busybox:latest").runCmd(${JSON.stringify(`echo ${stamp} \\`)});\n`);
    const kept = await kiln(['--root', root, 'build', '--progress=plain', path.join(ctx, 'trailing.ts')]);
    assert.equal(kept.code, 0, kept.stderr);
    assert.doesNotMatch(kept.stderr, /handing/);
  });
});

describe('kiln serve recovery', () => {
  test('killed with SIGKILL mid-build, it restarts and serves the next build, reusing finished steps; SIGTERM stops it cleanly', async (t) => {
    if (!requireIntegration(t)) return;
    const root = await newRoot();
    const key = newTeamKey(root, 'gamma');
    let server = await startServe(root);
    try {
      const second = await kiln(['--root', root, 'serve', '--listen', '127.0.0.1:0']);
      assert.equal(second.code, 1, 'a second server on the same root is refused');
      assert.match(second.stderr, /another kiln serve is listening/);
      const stamp = Date.now();
      const ctx = await newContext({ Dockerfile: `FROM busybox:latest\nRUN echo first ${stamp} > /first\nRUN echo second; sleep 60\n` });
      const { build } = await dockerfileBuild(server.url, key, ctx, 'killed', false);
      await readEvents(server.url, key, build.id, 0, (g) => g.some((e) => e.data.includes('"data":"second')));
      await server.kill();
      server = await startServe(root);
      const after = (await api(server.url, key, 'GET', `/v1/builds/${build.id}`)).body as Build;
      assert.equal(after.status, 'interrupted');
      const events = await readEvents(server.url, key, build.id, 0);
      assert.match(events.at(-1)!.data, /"status":"interrupted"/, 'a follower gets the end of the stream');
      assert.deepEqual(leftovers(root), { mounts: [], containers: [] });
      await fsp.writeFile(path.join(ctx, 'Dockerfile'), `FROM busybox:latest\nRUN echo first ${stamp} > /first\nRUN echo quick > /second\n`);
      const next = await dockerfileBuild(server.url, key, ctx, 'killed');
      assert.equal(next.build.status, 'success', next.build.error ?? '');
      assert.deepEqual(next.build.result!.steps.map((s) => s.cached), [true, true, false], 'the finished first RUN is reused');
      // SIGTERM with a build running: it is let finish (within the timeout), the server exits 0
      await fsp.writeFile(path.join(ctx, 'Dockerfile'), `FROM busybox:latest\nRUN sleep 1; echo ${stamp} > /slow\n`);
      const slow = await dockerfileBuild(server.url, key, ctx, 'slow', false);
      await new Promise((r) => setTimeout(r, 300));
      const code = await server.stop();
      assert.equal(code, 0);
      server = await startServe(root);
      const s = (await api(server.url, key, 'GET', `/v1/builds/${slow.build.id}`)).body as Build;
      assert.equal(s.status, 'success', 'SIGTERM let the running build finish');
      await cleanup(ctx);
    } finally {
      await server.stop();
      await cleanup(root);
    }
  });
});
