/**
 * The shared per-step cache in a registry (`--cache-registry`) and cache mounts that travel through it
 * (`mounts=true`), against a real docker-registry on loopback: a build in one state root, rebuilt in an empty one.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, promises as fsp, readdirSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { build, cleanup, imageFiles, integrationBlocker, kilnSync, newContext, newRoot, repoRoot, requireIntegration, type BuildOutcome } from '../helpers/kiln.js';
import { registryBlobFile, registryInstalled, skipWithoutRegistry, startRegistry, type TestRegistry } from '../helpers/registry.js';
import { sdkBaseTar, startPyIndex, type PyIndex } from '../helpers/sdk-fixtures.js';
import { openState } from '../../src/engine/index.js';
import { stepTag } from '../../src/cache-io/index.js';
import { Template } from '../../src/api/index.js';

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

/** RUN markers the containers printed (plain progress prints output lines as `#N 0.1 TEXT`). */
function ran(r: BuildOutcome): string[] {
  return [...r.stderr.matchAll(/^#\d+ [\d.]+ (RAN-\w+)$/gm)].map((m) => m[1]!).sort();
}

function ok(r: { code: number; stderr: string }): void {
  assert.equal(r.code, 0, r.stderr);
}

function skip(t: import('node:test').TestContext): boolean {
  return !requireIntegration(t) || skipWithoutRegistry(t);
}

/** A state root with nothing in it: not even busybox (the base must come from the shared cache). */
function emptyRoot(dirs: string[]): string {
  const d = mkdtempSync(path.join(tmpdir(), 'kiln-root-empty-'));
  dirs.push(d);
  return d;
}

/** The cache key kiln recorded for the step whose name contains `text`. */
async function keyOf(root: string, text: string): Promise<string> {
  const s = await openState({ root, cleanup: false });
  try {
    const rec = s.db.cacheRecords.listCache().find((r) => r.name.includes(text));
    assert.ok(rec, `a record for ${text}`);
    return rec.key;
  } finally {
    s.close();
  }
}

describe('shared cache: --cache-registry, per step and on demand', { concurrency: false }, () => {
  let reg: TestRegistry | undefined;
  let ctx = '';
  let digestA = '';
  const dirs: string[] = [];

  before(async () => {
    if (integrationBlocker() || !registryInstalled()) return;
    reg = await startRegistry();
    ctx = await newContext({ Dockerfile: DOCKERFILE, 'src/a.txt': 'from the context\n' });
    dirs.push(ctx);
  });
  after(async () => {
    await reg?.stop();
    await cleanup(...dirs);
  });

  test('built in root A, rebuilt in an empty root B: every step a remote hit, no RUN executed, same digest', async (t) => {
    if (skip(t)) return;
    const ref = `${reg!.host}/team-a/cache`;
    const rootA = await newRoot();
    dirs.push(rootA);
    const a = await build(rootA, ctx, ['--cache-registry', ref]);
    ok(a);
    assert.deepEqual(ran(a), ['RAN-build', 'RAN-combined', 'RAN-final', 'RAN-two']);
    assert.match(a.stderr, /shared cache .*: 0 steps from the registry .*, 7 pushed, 1 base images pushed/);
    digestA = a.meta['containerimage.digest'];

    // every step is an ordinary OCI manifest under a tag made from its key
    const key = await keyOf(rootA, 'RUN echo two');
    const m = await fetch(`http://${reg!.host}/v2/team-a/cache/manifests/${stepTag(key)}`, { headers: { accept: 'application/vnd.oci.image.manifest.v1+json' } });
    assert.equal(m.status, 200);
    const manifest = (await m.json()) as { config: { mediaType: string; digest: string }; layers: unknown[] };
    assert.equal(manifest.config.mediaType, 'application/vnd.kiln.cache.config.v1+json');
    assert.equal(manifest.layers.length, 1);
    const cfg = (await (await fetch(`http://${reg!.host}/v2/team-a/cache/blobs/${manifest.config.digest}`)).json()) as { records: Array<{ key: string }> };
    assert.deepEqual(cfg.records.map((r) => r.key), [key], 'the record carries the key as computed');

    const rootB = emptyRoot(dirs);
    const b = await build(rootB, ctx, ['--cache-registry', ref]);
    ok(b);
    assert.match(b.stderr, /base busybox:latest from the shared cache/);
    assert.deepEqual(ran(b), [], 'no RUN step may execute');
    for (const s of b.meta['kiln.steps']) {
      assert.equal(s.cached, true, `${s.name} should be cached`);
      if (!/\] FROM /.test(s.name)) assert.equal((s as { remote?: boolean }).remote, true, `${s.name} came from the registry`);
    }
    assert.equal(b.meta['containerimage.digest'], digestA, 'identical image digest');
    assert.match(b.stderr, /: 7 steps from the registry .*, 0 pushed, 0 base images pushed/);
    const files = await imageFiles(rootB, b.meta['containerimage.digest']);
    assert.equal(files.get('combined')?.content, 'built\ntwo\nfrom the context\n');

    // another team's namespace shares nothing
    const other = await newRoot();
    dirs.push(other);
    const c = await build(other, ctx, ['--cache-registry', `${reg!.host}/team-b/cache`]);
    ok(c);
    assert.deepEqual(ran(c), ['RAN-build', 'RAN-combined', 'RAN-final', 'RAN-two']);
  });

  test('a local root that already has the steps pushes what the registry lacks (backfill), then a fresh root hits', async (t) => {
    if (skip(t)) return;
    const rootA = await newRoot();
    dirs.push(rootA);
    ok(await build(rootA, ctx)); // no shared cache yet
    const ref = `${reg!.host}/team-c/cache`;
    const a = await build(rootA, ctx, ['--cache-registry', ref]);
    ok(a);
    assert.match(a.stderr, /0 steps from the registry .*, 7 pushed, 1 base images pushed/);
    const b = await build(emptyRoot(dirs), ctx, ['--cache-registry', ref]);
    ok(b);
    assert.deepEqual(ran(b), []);
    assert.equal(b.meta['containerimage.digest'], a.meta['containerimage.digest']);
  });

  test('a corrupted layer blob in the registry: that step rebuilds (verified, warned), the rest still hits', async (t) => {
    if (skip(t)) return;
    const ref = `${reg!.host}/team-a/cache`;
    const rootA = await newRoot();
    dirs.push(rootA);
    ok(await build(rootA, ctx, ['--cache-registry', ref]));
    const key = await keyOf(rootA, 'RUN echo two');
    const m = (await (await fetch(`http://${reg!.host}/v2/team-a/cache/manifests/${stepTag(key)}`, { headers: { accept: 'application/vnd.oci.image.manifest.v1+json' } })).json()) as { layers: Array<{ digest: string }> };
    const file = registryBlobFile(reg!, m.layers[0]!.digest);
    const size = (await fsp.stat(file)).size;
    await fsp.writeFile(file, randomBytes(size));

    const rootC = emptyRoot(dirs);
    const c = await build(rootC, ctx, ['--cache-registry', ref]);
    ok(c);
    assert.match(c.stderr, /warning: shared cache: .*corrupt.*the step runs/);
    assert.deepEqual(ran(c), ['RAN-two'], 'only the step whose blob is corrupt runs');
    const two = c.meta['kiln.steps'].find((s) => s.name.includes('RUN echo two'))!;
    assert.equal(two.cached, false);
    for (const s of c.meta['kiln.steps'].filter((x) => !x.name.includes('RUN echo two') && !x.name.includes('COPY --from'))) assert.equal(s.cached, true, `${s.name} should be cached`);
    assert.equal((await imageFiles(rootC, c.meta['containerimage.digest'])).get('combined')?.content, 'built\ntwo\nfrom the context\n');

    // the rerun pushed a good copy under the same key: the next fresh root runs nothing
    const d = await build(emptyRoot(dirs), ctx, ['--cache-registry', ref]);
    ok(d);
    assert.deepEqual(ran(d), []);
    assert.equal(d.meta['containerimage.digest'], c.meta['containerimage.digest']);
  });

  test('a build that fails has pushed its finished steps: a retry in another empty root resumes after them', async (t) => {
    if (skip(t)) return;
    const ref = `${reg!.host}/team-d/cache`;
    const df = (last: string): string => `FROM busybox\nRUN echo one > /one && echo RAN-one\nRUN echo two > /two && echo RAN-two\nRUN ${last}\n`;
    const bad = await newContext({ Dockerfile: df('echo RAN-fail && exit 3') });
    const good = await newContext({ Dockerfile: df('echo RAN-last && cat /one /two > /both') });
    dirs.push(bad, good);
    const rootA = await newRoot();
    dirs.push(rootA);
    const a = await build(rootA, bad, ['--cache-registry', ref]);
    assert.notEqual(a.code, 0, 'the build fails');
    assert.deepEqual(ran(a), ['RAN-fail', 'RAN-one', 'RAN-two']);
    const rootB = emptyRoot(dirs);
    const b = await build(rootB, good, ['--cache-registry', ref]);
    ok(b);
    assert.deepEqual(ran(b), ['RAN-last'], 'the steps finished before the failure come from the registry');
    assert.equal((await imageFiles(rootB, b.meta['containerimage.digest'])).get('both')?.content, 'one\ntwo\n');
  });

  test('the SDK: Template.build({ cacheRegistry }) in an empty root after another root built it: all cached', async (t) => {
    if (skip(t)) return;
    const ref = `${reg!.host}/team-sdk/cache`;
    const tpl = Template().fromImage('busybox').runCmd(`echo sdk-${randomBytes(4).toString('hex')} > /id`).setEnv('A', '1').runCmd('cat /id > /copy');
    const rootA = await newRoot();
    dirs.push(rootA);
    const sdkCtx = await newContext({ 'x.txt': 'x\n' });
    dirs.push(sdkCtx);
    const a = await Template.build(tpl, { root: rootA, contextPath: sdkCtx, cacheRegistry: { ref } });
    assert.deepEqual(a.steps.map((s) => s.cached), [true, false, false, false]);
    const b = await Template.build(tpl, { root: emptyRoot(dirs), contextPath: sdkCtx, cacheRegistry: { ref } });
    assert.deepEqual(b.steps.map((s) => s.cached), [true, true, true, true]);
    assert.equal(b.digest, a.digest);
  });

  test('an unreachable shared cache is a warning: the build runs every step and succeeds', async (t) => {
    if (skip(t)) return;
    const rootA = await newRoot();
    dirs.push(rootA);
    // a loopback port nothing listens on
    const r = await build(rootA, ctx, ['--cache-registry', '127.0.0.1:9/team/cache']);
    ok(r);
    assert.deepEqual(ran(r), ['RAN-build', 'RAN-combined', 'RAN-final', 'RAN-two']);
    assert.match(r.stderr, /warning: shared cache: .*not pushed/);
    const bad = kilnSync(['build', '--root', rootA, '--cache-registry', 'ref=,mounts=x', ctx]);
    assert.notEqual(bad.code, 0);
    assert.match(bad.stderr, /--cache-registry/);
    assert.doesNotMatch(bad.stderr, /\n\s+at /, 'no stack trace');
  });
});

describe('shared cache: cache mounts travel (pip against a loopback index)', { concurrency: false }, () => {
  let reg: TestRegistry | undefined;
  let index: PyIndex | undefined;
  const dirs: string[] = [];
  const BASE = 'kiln-test/python:shared';
  let baseTar = '';

  const dockerfile = (pkgs: string): string => `FROM ${BASE}
ARG INDEX
RUN --mount=type=cache,target=/root/.cache/pip \\
    PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_ROOT_USER_ACTION=ignore python3 -m pip install --index-url "$INDEX" --trusted-host 127.0.0.1 ${pkgs} && echo RAN-pip
`;

  before(async () => {
    if (integrationBlocker() || !registryInstalled()) return;
    reg = await startRegistry();
    baseTar = sdkBaseTar('python');
    index = await startPyIndex([
      { name: 'numpy', version: '1.26.4', size: 300_000 },
      { name: 'pandas', version: '2.2.2', size: 200_000 },
      { name: 'matplotlib', version: '3.8.4', size: 150_000 },
    ]);
  });
  after(async () => {
    await index?.close();
    await reg?.stop();
    await cleanup(...dirs);
  });

  const wheels = (since: number): Array<{ name: string; bytes: number }> =>
    index!.wheelsFetched(since).map((l) => ({ name: path.basename(l.path).split('-')[0]!, bytes: l.bytes }));

  test('root A installs and shares its pip cache; fresh roots with one more package fetch only that wheel', async (t) => {
    if (skip(t)) return;
    const h = reg!.host;
    const rootA = await newRoot();
    dirs.push(rootA);
    ok(kilnSync(['import', '--root', rootA, baseTar, BASE]));
    const ctxA = await newContext({ Dockerfile: dockerfile('numpy pandas') });
    dirs.push(ctxA);
    const args = ['--build-arg', `INDEX=${index!.url}`];
    const a = await build(rootA, ctxA, [...args, '--cache-registry', `${h}/team/cache`, '--cache-to', `type=registry,ref=${h}/other/cache:v1,mounts=true`]);
    ok(a);
    assert.deepEqual(wheels(0).map((w) => w.name).sort(), ['numpy', 'pandas']);
    assert.match(a.stderr, /cache mount \/root\/\.cache\/pip: \d+ entries shared with .*\/team\/cache/);
    assert.match(a.stderr, /cache mount \/root\/\.cache\/pip: \d+ entries shared with .*\/other\/cache/);

    const ctxB = await newContext({ Dockerfile: dockerfile('numpy pandas matplotlib') });
    dirs.push(ctxB);

    // B: an empty root on the per-step cache (base from it, the pip cache imported on first use)
    const mark = index!.log.length;
    const b = await build(emptyRoot(dirs), ctxB, [...args, '--cache-registry', `${h}/team/cache`]);
    ok(b);
    assert.deepEqual(ran(b), ['RAN-pip'], 'the changed install runs');
    const gotB = wheels(mark);
    assert.deepEqual(gotB.map((w) => w.name), ['matplotlib'], 'only the new package is downloaded');
    const bytesB = gotB.reduce((n, w) => n + w.bytes, 0);
    assert.ok(bytesB > 150_000 && bytesB < 200_000, `fetched ${bytesB} bytes: the size of the matplotlib wheel`);
    assert.match(b.stderr, /cache mount \/root\/\.cache\/pip: \d+ entries \(\d+ bytes\) from .*\/team\/cache/);

    // C: the CLI's --cache-from ...,mounts=true (the base imported as usual)
    const rootC = await newRoot();
    dirs.push(rootC);
    ok(kilnSync(['import', '--root', rootC, baseTar, BASE]));
    const mark2 = index!.log.length;
    const c = await build(rootC, ctxB, [...args, '--cache-from', `type=registry,ref=${h}/other/cache:v1,mounts=true`]);
    ok(c);
    assert.deepEqual(wheels(mark2).map((w) => w.name), ['matplotlib'], 'only the new package is downloaded');

    // nothing of the pip cache is in any layer
    const files = await imageFiles(rootC, c.meta['containerimage.digest']);
    assert.deepEqual([...files.keys()].filter((p) => p.startsWith('root/.cache/pip/')), []);
    assert.ok([...files.keys()].some((p) => p.endsWith('/matplotlib/__init__.py')), 'matplotlib is installed');
  });
});

describe('shared cache: apt-get under cache mounts on a fresh root (the machine\'s Debian mirror)', { concurrency: false }, () => {
  let reg: TestRegistry | undefined;
  let tar = '';
  let sources = '';
  const dirs: string[] = [];
  const BASE = 'kiln-test/debian:shared';
  const dockerfile = (pkgs: string): string => `FROM ${BASE}
RUN rm -f /etc/apt/apt.conf.d/docker-clean && echo 'Binary::apt::APT::Keep-Downloaded-Packages "true";' > /etc/apt/apt.conf.d/keep-cache
RUN --mount=type=cache,target=/var/cache/apt,sharing=locked --mount=type=cache,target=/var/lib/apt,sharing=locked \\
    --mount=type=secret,id=aptsources,target=/etc/apt/sources.list.d/host.sources \\
    apt-get update && apt-get install -y --no-install-recommends ${pkgs}
`;
  /** package names apt downloaded */
  const fetched = (out: string): string[] => [...out.matchAll(/Get:\d+ \S+ \S+ \S+ (\S+) \S+ \S+ \[[\d.,]+ [kM]?B\]/g)].map((m) => m[1]!);
  const needKb = (out: string): number => {
    const need = /Need to get ([\d.,]+) ([kM]?B)/.exec(out);
    return need ? Number(need[1]!.replace(/,/g, '')) * (need[2] === 'MB' ? 1000 : need[2] === 'kB' ? 1 : 0.001) : 0;
  };

  before(async () => {
    if (integrationBlocker() || !registryInstalled()) return;
    const mk = spawnSync('bash', [path.join(repoRoot, 'test', 'helpers', 'make-debian-rootfs.sh')], { encoding: 'utf8' });
    if (mk.status !== 0) throw new Error(`debootstrap failed: ${mk.stderr}`);
    tar = mk.stdout.trim().split('\n').pop()!;
    sources = readdirSync('/etc/apt/sources.list.d').filter((f) => f.endsWith('.sources')).map((f) => path.join('/etc/apt/sources.list.d', f))[0] ?? '';
    reg = await startRegistry();
  });
  after(async () => {
    await reg?.stop();
    await cleanup(...dirs);
  });

  test('root A installs jq; an empty root B installing jq and tree downloads only tree', async (t) => {
    if (skip(t)) return;
    assert.ok(sources, 'this machine has a deb822 apt sources file');
    const ref = `${reg!.host}/team/cache`;
    const rootA = await newRoot();
    dirs.push(rootA);
    ok(kilnSync(['import', '--root', rootA, tar, BASE]));
    const ctxA = await newContext({ Dockerfile: dockerfile('jq') });
    const ctxB = await newContext({ Dockerfile: dockerfile('jq tree') });
    dirs.push(ctxA, ctxB);
    const a = await build(rootA, ctxA, ['--secret', `id=aptsources,src=${sources}`, '--cache-registry', ref]);
    ok(a);
    assert.ok(fetched(a.stderr).includes('jq'), `A downloads jq: ${fetched(a.stderr).join(' ')}`);
    assert.match(a.stderr, /cache mount \/var\/cache\/apt: \d+ entries shared with/);

    const rootB = emptyRoot(dirs);
    const b = await build(rootB, ctxB, ['--secret', `id=aptsources,src=${sources}`, '--cache-registry', ref]);
    ok(b);
    assert.match(b.stderr, /cache mount \/var\/cache\/apt: \d+ entries \(\d+ bytes\) from/);
    assert.deepEqual(fetched(b.stderr), ['tree'], 'only the new package is downloaded');
    const kb = needKb(b.stderr);
    assert.ok(kb > 0 && kb < 200, `needed ${kb} kB`);
    const files = await imageFiles(rootB, b.meta['containerimage.digest']);
    assert.ok(files.has('usr/bin/tree') && files.has('usr/bin/jq'));
    assert.deepEqual([...files.keys()].filter((p) => p.endsWith('.deb')), [], 'no .deb in any layer');
  });
});
