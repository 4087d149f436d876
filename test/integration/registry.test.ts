import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { cpSync, mkdtempSync, promises as fsp, readFileSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { build, cleanup, imageFiles, integrationBlocker, kiln, kilnSync, newContext, newRoot, readImage, requireIntegration, type BuildOutcome } from '../helpers/kiln.js';
import { registryBlobFile, registryInstalled, skipWithoutRegistry, startRegistry, type TestRegistry } from '../helpers/registry.js';
import { RegistryClient } from '../../src/registry/index.js';
import { sha256 } from '../../src/oci/index.js';

const DOCKERFILE = `FROM busybox AS build
RUN echo built > /out.txt && echo RAN-build
RUN echo two >> /out.txt && echo RAN-two

FROM busybox
ENV X=1
RUN echo final > /final.txt && echo RAN-final
COPY src/ /src/
COPY --from=build /out.txt /out.txt
RUN cat /out.txt /src/a.txt > /combined && echo RAN-combined
`;

/** step name without the `[stage n/m]` prefix → cached */
function flags(r: BuildOutcome): Record<string, boolean> {
  const out: Record<string, boolean> = {};
  for (const s of r.meta['kiln.steps']) out[s.name.replace(/^\[[^\]]*\]\s*/, '')] = s.cached;
  return out;
}

/** RUN markers the containers printed (plain progress prints output lines as `#N 0.1 TEXT`). */
function ran(r: BuildOutcome): string[] {
  return [...r.stderr.matchAll(/^#\d+ [\d.]+ (RAN-\w+)$/gm)].map((m) => m[1]!).sort();
}

/** `kiln build` with extra environment (the shared helper passes none). */
async function buildWithEnv(root: string, ctx: string, env: Record<string, string>): Promise<BuildOutcome> {
  const metaFile = path.join(ctx, '..', `${path.basename(ctx)}-meta-env.json`);
  const r = await kiln(['build', '--root', root, '--progress=plain', '--metadata-file', metaFile, ctx], { env });
  const meta = JSON.parse(await fsp.readFile(metaFile, 'utf8').catch(() => '{"kiln.steps":[]}')) as BuildOutcome['meta'];
  await fsp.rm(metaFile, { force: true });
  return { ...r, meta };
}

function ok(r: { code: number; stderr: string }): void {
  assert.equal(r.code, 0, r.stderr);
}

function skip(t: import('node:test').TestContext): boolean {
  return !requireIntegration(t) || skipWithoutRegistry(t);
}

interface CacheDoc {
  records: Array<{ key: string; name: string; diffId: string | null }>;
  layers: Array<{ diffId: string; blob: string }>;
}

async function localCacheConfig(dir: string): Promise<CacheDoc> {
  const index = JSON.parse(readFileSync(path.join(dir, 'index.json'), 'utf8')) as { manifests: Array<{ digest: string }> };
  const blob = (d: string): Buffer => readFileSync(path.join(dir, 'blobs', 'sha256', d.slice(7)));
  const manifest = JSON.parse(blob(index.manifests.at(-1)!.digest).toString()) as { config: { digest: string; mediaType: string } };
  assert.equal(manifest.config.mediaType, 'application/vnd.kiln.cache.config.v1+json');
  return JSON.parse(blob(manifest.config.digest).toString()) as CacheDoc;
}

async function registryCacheConfig(reg: TestRegistry, repo: string, tag: string): Promise<CacheDoc> {
  const m = await fetch(`http://${reg.host}/v2/${repo}/manifests/${tag}`, { headers: { accept: 'application/vnd.oci.image.manifest.v1+json' } });
  assert.equal(m.status, 200);
  const manifest = (await m.json()) as { config: { digest: string } };
  const c = await fetch(`http://${reg.host}/v2/${repo}/blobs/${manifest.config.digest}`);
  return (await c.json()) as CacheDoc;
}

describe('registry: push, pull, cache export and import', { concurrency: false }, () => {
  let reg: TestRegistry | undefined;
  let rootA = '';
  let ctx = '';
  let digestA = '';
  const dirs: string[] = [];
  const tmp = (prefix: string): string => {
    const d = mkdtempSync(path.join(tmpdir(), prefix));
    dirs.push(d);
    return d;
  };
  const freshRoot = async (): Promise<string> => {
    const r = await newRoot();
    dirs.push(r);
    return r;
  };

  before(async () => {
    if (integrationBlocker() || !registryInstalled()) return;
    reg = await startRegistry();
    rootA = await freshRoot();
    ctx = await newContext({ Dockerfile: DOCKERFILE, 'src/a.txt': 'from the context\n' });
    dirs.push(ctx);
  });
  after(async () => {
    await reg?.stop();
    await cleanup(...dirs);
  });

  test('mode=max through a registry: a fresh state dir rebuilds with every step cached, no RUN, same digest', async (t) => {
    if (skip(t)) return;
    const h = reg!.host;
    const a = await build(rootA, ctx, ['--cache-to', `type=registry,ref=${h}/app/cache:max,mode=max`, '--push', '-t', `${h}/app/img:1`]);
    ok(a);
    assert.deepEqual(ran(a), ['RAN-build', 'RAN-combined', 'RAN-final', 'RAN-two']);
    digestA = a.meta['containerimage.digest'];
    assert.match(a.stderr, /pushed .*app\/img:1/);
    assert.match(a.stderr, /exported cache \(mode=max\): 7 records/);

    const rootB = await freshRoot();
    const b = await build(rootB, ctx, ['--cache-from', `type=registry,ref=${h}/app/cache:max`]);
    ok(b);
    assert.deepEqual(ran(b), [], 'no RUN step may execute');
    for (const s of b.meta['kiln.steps']) assert.equal(s.cached, true, `${s.name} should be cached`);
    assert.equal(b.meta['containerimage.digest'], digestA);
    const files = await imageFiles(rootB, b.meta['containerimage.digest']);
    assert.equal(files.get('combined')?.content, 'built\ntwo\nfrom the context\n');
  });

  test('skopeo inspects and copies what kiln pushed', async (t) => {
    if (skip(t)) return;
    const h = reg!.host;
    const insp = spawnSync('skopeo', ['inspect', '--tls-verify=false', `docker://${h}/app/img:1`], { encoding: 'utf8' });
    assert.equal(insp.status, 0, insp.stderr);
    const info = JSON.parse(insp.stdout) as { Digest: string; Layers: string[] };
    assert.equal(info.Digest, digestA);
    const { manifest } = await readImage(rootA, digestA);
    assert.deepEqual(info.Layers, manifest.layers.map((l) => l.digest));
    const out = tmp('kiln-skopeo-');
    const cp = spawnSync('skopeo', ['copy', '--src-tls-verify=false', `docker://${h}/app/img:1`, `oci:${out}:img`], { encoding: 'utf8' });
    assert.equal(cp.status, 0, cp.stderr);
    const index = JSON.parse(readFileSync(path.join(out, 'index.json'), 'utf8')) as { manifests: Array<{ digest: string }> };
    assert.equal(index.manifests[0]!.digest, digestA, 'skopeo copied the manifest unchanged');
    const raw = spawnSync('skopeo', ['inspect', '--raw', '--tls-verify=false', `docker://${h}/app/cache:max`], { encoding: 'utf8' });
    assert.equal(raw.status, 0, raw.stderr);
    assert.equal((JSON.parse(raw.stdout) as { config: { mediaType: string } }).config.mediaType, 'application/vnd.kiln.cache.config.v1+json');
  });

  test('the same through type=local', async (t) => {
    if (skip(t)) return;
    const dir = tmp('kiln-cache-max-');
    const a = await build(rootA, ctx, ['--cache-to', `type=local,dest=${dir},mode=max`]);
    ok(a);
    assert.equal(a.meta['containerimage.digest'], digestA, 'a fully cached rebuild keeps the digest');
    // a source that does not exist is a warning, not an error (the first build of a branch has no cache yet)
    const c = await build(await freshRoot(), ctx, ['--cache-from', `${reg!.host}/app/none:x`, '--cache-from', `type=local,src=${dir}`]);
    ok(c);
    assert.match(c.stderr, /cache source .*app\/none:x skipped/);
    assert.deepEqual(ran(c), []);
    for (const s of c.meta['kiln.steps']) assert.equal(s.cached, true, `${s.name} should be cached`);
    assert.equal(c.meta['containerimage.digest'], digestA);
  });

  test('mode=min exports fewer records; an intermediate-stage change then misses only where it should', async (t) => {
    if (skip(t)) return;
    const minDir = tmp('kiln-cache-min-');
    const maxDir = tmp('kiln-cache-max-');
    ok(await build(rootA, ctx, ['--cache-to', `type=local,dest=${minDir},mode=min`, '--cache-to', `type=local,dest=${maxDir},mode=max`]));
    const min = await localCacheConfig(minDir);
    const max = await localCacheConfig(maxDir);
    assert.ok(min.records.length < max.records.length, `min ${min.records.length} < max ${max.records.length}`);
    assert.equal(max.records.length, 7);
    const maxKeys = new Set(max.records.map((r) => r.key));
    for (const r of min.records) assert.ok(maxKeys.has(r.key), `${r.name} of min is in max`);
    assert.deepEqual(min.records.filter((r) => r.name.startsWith('[build')), [], 'min holds no step of the build stage');

    const ctx2 = tmp('kiln-ctx-changed-');
    cpSync(ctx, ctx2, { recursive: true });
    writeFileSync(path.join(ctx2, 'Dockerfile'), DOCKERFILE.replace('echo two', 'echo TWO'));
    const expectFinal = { 'ENV X=1': true, 'RUN echo final > /final.txt && echo RAN-final': true, 'COPY src/ /src/': true, 'COPY --from=build /out.txt /out.txt': false, 'RUN cat /out.txt /src/a.txt > /combined && echo RAN-combined': false };

    const e = await build(await freshRoot(), ctx2, ['--cache-from', `type=local,src=${minDir}`]);
    ok(e);
    assert.deepEqual(flags(e), {
      'FROM busybox:latest': true,
      'RUN echo built > /out.txt && echo RAN-build': false,
      'RUN echo TWO >> /out.txt && echo RAN-two': false,
      ...expectFinal,
    });
    const f = await build(await freshRoot(), ctx2, ['--cache-from', `type=local,src=${maxDir}`]);
    ok(f);
    assert.deepEqual(flags(f), {
      'FROM busybox:latest': true,
      'RUN echo built > /out.txt && echo RAN-build': true,
      'RUN echo TWO >> /out.txt && echo RAN-two': false,
      ...expectFinal,
    });
    assert.deepEqual(ran(f), ['RAN-combined', 'RAN-two']);
  });

  test('inline cache: --cache-from an image ref reads the records from its config', async (t) => {
    if (skip(t)) return;
    const h = reg!.host;
    ok(await build(rootA, ctx, ['--cache-to', 'type=inline', '--push', '-t', `${h}/app/inline:1`]));
    const g = await build(await freshRoot(), ctx, ['--cache-from', `${h}/app/inline:1`]);
    ok(g);
    // the build stage is not in the image, so it runs; its output is the same, so the final stage stays cached
    assert.deepEqual(ran(g), ['RAN-build', 'RAN-two']);
    for (const s of g.meta['kiln.steps'].filter((x) => x.name.startsWith('[stage-1'))) assert.equal(s.cached, true, `${s.name} should be cached`);
  });

  test('kiln pulls what skopeo pushed (docker schema 2), and FROM pulls a missing base', async (t) => {
    if (skip(t)) return;
    const h = reg!.host;
    const archive = path.join(tmp('kiln-save-'), 'busybox.tar');
    ok(kilnSync(['save', '--root', rootA, 'busybox:latest', '-o', archive, '--format', 'oci']));
    const cp = spawnSync('skopeo', ['copy', '--format', 'v2s2', '--dest-tls-verify=false', `oci-archive:${archive}`, `docker://${h}/sk/base:1`], { encoding: 'utf8' });
    assert.equal(cp.status, 0, cp.stderr);
    const insp = JSON.parse(spawnSync('skopeo', ['inspect', '--tls-verify=false', `docker://${h}/sk/base:1`], { encoding: 'utf8' }).stdout) as { Digest: string };

    const empty = tmp('kiln-root-empty-');
    const pulled = kilnSync(['pull', '--root', empty, `${h}/sk/base:1`]);
    ok(pulled);
    assert.equal(pulled.stdout.trim(), insp.Digest);
    const { manifest } = await readImage(empty, insp.Digest);
    assert.equal(manifest.mediaType, 'application/vnd.docker.distribution.manifest.v2+json');

    const other = tmp('kiln-root-from-');
    const fctx = await newContext({ Dockerfile: `FROM ${h}/sk/base:1\nRUN echo hi > /hi\n` });
    dirs.push(fctx);
    const r = await build(other, fctx);
    ok(r);
    assert.match(r.stderr, new RegExp(`pulling ${h}/sk/base:1`));
    assert.equal((await imageFiles(other, r.meta['containerimage.digest'])).get('hi')?.content, 'hi\n');
  });

  test('a corrupted blob in the registry is detected and its step rebuilds', async (t) => {
    if (skip(t)) return;
    const cfg = await registryCacheConfig(reg!, 'app/cache', 'max');
    const rec = cfg.records.find((r) => r.name.includes('RUN echo two'));
    assert.ok(rec?.diffId);
    const blob = cfg.layers.find((l) => l.diffId === rec.diffId)!.blob;
    const file = registryBlobFile(reg!, blob);
    const size = (await fsp.stat(file)).size;
    await fsp.writeFile(file, randomBytes(size));

    const rootD = await freshRoot();
    const r = await build(rootD, ctx, ['--cache-from', `type=registry,ref=${reg!.host}/app/cache:max`]);
    ok(r);
    assert.match(r.stderr, /corrupt/);
    assert.deepEqual(ran(r), ['RAN-two'], 'only the step whose layer was corrupt runs');
    const f = flags(r);
    assert.equal(f['RUN echo two >> /out.txt && echo RAN-two'], false);
    assert.equal(f['RUN echo built > /out.txt && echo RAN-build'], true);
    assert.equal(f['RUN cat /out.txt /src/a.txt > /combined && echo RAN-combined'], true, 'same content after the rerun: later steps stay cached');
    assert.equal((await imageFiles(rootD, r.meta['containerimage.digest'])).get('combined')?.content, 'built\ntwo\nfrom the context\n');
  });

  test('SOURCE_DATE_EPOCH: separate state dirs, context mtimes on different days, identical digests', async (t) => {
    if (skip(t)) return;
    const df = 'FROM busybox\nCOPY src/ /src/\nRUN mkdir -p /out && echo made > /out/f\n';
    const epoch = 1_700_000_000;
    const day = 24 * 3600;
    const now = Math.floor(Date.now() / 1000);
    const c1 = await newContext({ Dockerfile: df, 'src/a.txt': 'same\n', 'src/d/b.txt': 'bytes\n' });
    const c2 = await newContext({ Dockerfile: df, 'src/a.txt': 'same\n', 'src/d/b.txt': 'bytes\n' });
    dirs.push(c1, c2);
    for (const [c, age] of [[c1, 1], [c2, 3]] as const) {
      for (const f of ['src/a.txt', 'src/d/b.txt', 'src/d', 'src']) utimesSync(path.join(c, f), now - age * day, now - age * day);
    }
    const p = await freshRoot();
    const plain = await build(p, c1);
    ok(plain);
    const withArg = await build(p, c1, ['--build-arg', `SOURCE_DATE_EPOCH=${epoch}`]);
    ok(withArg);
    assert.equal(withArg.meta['kiln.steps'].filter((s) => s.name.includes('RUN')).every((s) => !s.cached), true, 'a layer built without the epoch is not reused');
    const q = await freshRoot();
    const viaEnv = await buildWithEnv(q, c2, { SOURCE_DATE_EPOCH: String(epoch) });
    ok(viaEnv);
    assert.equal(viaEnv.meta['containerimage.digest'], withArg.meta['containerimage.digest']);
    assert.notEqual(plain.meta['containerimage.digest'], withArg.meta['containerimage.digest']);
    const { config } = await readImage(q, viaEnv.meta['containerimage.digest']);
    assert.equal(config.created, '2023-11-14T22:13:20Z');
    for (const h of config.history ?? []) assert.ok(Date.parse(h.created!) <= epoch * 1000, `history ${h.created_by} at ${h.created}`);
  });

  test('client: chunked upload, HEAD skip, cross-repository mount, verified download', async (t) => {
    if (skip(t)) return;
    const client = new RegistryClient({ chunkSize: 64 * 1024, dockerConfig: false });
    const data = randomBytes(300 * 1024 + 17);
    const descriptor = { mediaType: 'application/octet-stream', digest: sha256(data), size: data.length };
    const source = { size: data.length, read: async (s: number, e: number) => data.subarray(s, e) };
    const host = reg!.host;
    assert.equal(await client.pushBlob({ host, repository: 'blobs/a', descriptor, source }), 'uploaded');
    assert.equal(await client.pushBlob({ host, repository: 'blobs/a', descriptor, source }), 'exists');
    assert.equal(await client.pushBlob({ host, repository: 'blobs/b', descriptor, source }), 'mounted');
    const chunks: Buffer[] = [];
    const sink = new Writable({ write: (c: Buffer, _e, cb) => (chunks.push(c), cb()) });
    await new RegistryClient({ dockerConfig: false }).fetchBlob({ host, repository: 'blobs/b', descriptor, sink });
    assert.ok(Buffer.concat(chunks).equals(data));
    const lie = { ...descriptor, digest: sha256('something else') };
    const wrong = new RegistryClient({ dockerConfig: false });
    // the registry has no blob under that digest
    await assert.rejects(wrong.fetchBlob({ host, repository: 'blobs/b', descriptor: lie, sink: new Writable({ write: (_c, _e, cb) => cb() }) }), { code: 'ERR_KILN_REGISTRY_NOT_FOUND' });
    await assert.rejects(client.getManifest({ host, repository: 'blobs/none', tag: 'x' }), { code: 'ERR_KILN_REGISTRY_NOT_FOUND' });
  });
});
