/**
 * RUN --mount with BuildKit's semantics, run for real: secrets (never stored), cache mounts (persist, never in a layer,
 * sharing modes across concurrent builds, from= seeding), binds, tmpfs, network, language caches, and apt on a Debian
 * base made with debootstrap.
 */
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, promises as fsp, readdirSync, readFileSync, utimesSync, writeFileSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import path from 'node:path';
import { build, cleanup, imageFiles, integrationBlocker, kiln, kilnSync, newContext, newRoot, readImage, repoRoot, requireIntegration } from '../helpers/kiln.js';
import { cacheMountDir, cacheMountKey } from '../../src/cache/index.js';
import { listLayer } from '../../src/layer/index.js';

const stepFlags = (meta: { 'kiln.steps': Array<{ name: string; cached: boolean }> }): boolean[] => meta['kiln.steps'].map((s) => s.cached);

/** Every layer blob of the state dir, decompressed, as one buffer per blob. */
function allLayerTars(root: string): Buffer[] {
  const dir = path.join(root, 'content', 'blobs', 'sha256');
  const out: Buffer[] = [];
  for (const name of readdirSync(dir)) {
    const b = readFileSync(path.join(dir, name));
    out.push(b[0] === 0x1f && b[1] === 0x8b ? gunzipSync(b) : b);
  }
  return out;
}

/** Paths stored in every layer of an image (what the tars hold, whiteouts not applied). */
async function storedPaths(root: string, digest: string): Promise<string[]> {
  const { manifest } = await readImage(root, digest);
  const out: string[] = [];
  for (const l of manifest.layers) {
    const entries = await listLayer({ source: path.join(root, 'content', 'blobs', 'sha256', l.digest.slice(7)) });
    for (const e of entries) out.push(e.path.replace(/^\.?\/*/, '').replace(/\/$/, ''));
  }
  return out;
}

describe('RUN --mount', { concurrency: false }, () => {
  let root = '';
  const dirs: string[] = [];
  before(async () => {
    if (integrationBlocker()) return;
    root = await newRoot();
    dirs.push(root);
  });
  after(async () => {
    if (dirs.length) await cleanup(...dirs);
  });
  const ctxOf = async (files: Record<string, string>): Promise<string> => {
    const c = await newContext(files);
    dirs.push(c);
    return c;
  };

  test('secret: file, env, mode/uid/gid, optional and required; the value is stored nowhere', async (t) => {
    if (!requireIntegration(t)) return;
    const value = `kiln-secret-${randomBytes(12).toString('hex')}`;
    const ctx = await ctxOf({
      Dockerfile: `FROM busybox
RUN --mount=type=secret,id=tok,mode=0440,uid=1000,gid=1001 --mount=type=secret,id=tok,target=/s2 --mount=type=secret,id=etok,env=ETOK \\
    sh -c 'stat -c "%a %u %g" /run/secrets/tok > /meta && [ "$(cat /run/secrets/tok)" = "$(cat /s2)" ] && [ "$ETOK" = "$(cat /s2 | sed s/kiln-secret/kiln-envsecret/)" ] && echo ok > /checked; [ -e /run/secrets/etok ] || echo noenvfile >> /checked'
RUN --mount=type=secret,id=absent sh -c '[ -e /run/secrets/absent ] || echo absent-ok > /optional'
`,
    });
    // the env secret is derived so the RUN can check it without printing either value
    const file = path.join(ctx, '..', `${path.basename(ctx)}-secret`);
    writeFileSync(file, value);
    dirs.push(file);
    const env = { KILN_TEST_ENV_SECRET: value.replace('kiln-secret', 'kiln-envsecret') };
    const r = await kiln(['build', '--root', root, '--progress=plain', '--secret', `id=tok,src=${file}`, '--secret', 'id=etok,env=KILN_TEST_ENV_SECRET', '-t', 'sec:1', ctx], { env });
    assert.equal(r.code, 0, r.stderr);
    const digest = kilnSync(['images', '--root', root, '--format', 'json']).stdout;
    const img = (JSON.parse(digest) as Array<{ name: string; digest: string }>).find((i) => i.name.endsWith('sec:1'))!;
    const files = await imageFiles(root, img.digest);
    assert.equal(files.get('meta')?.content, '440 1000 1001\n');
    assert.equal(files.get('checked')?.content, 'ok\nnoenvfile\n');
    assert.equal(files.get('optional')?.content, 'absent-ok\n');
    assert.equal([...files.keys()].some((p) => p.startsWith('run/secrets') || p === 's2'), false, 'no secret mount point is left in a layer');
    const secretValues = [value, env.KILN_TEST_ENV_SECRET];
    for (const v of secretValues) {
      assert.equal(r.stdout.includes(v) || r.stderr.includes(v), false, 'progress output');
      for (const tar of allLayerTars(root)) assert.equal(tar.includes(v), false, 'a blob (layer, config, manifest)');
      for (const f of readdirSync(root).filter((n) => n.startsWith('metadata.db'))) {
        assert.equal(readFileSync(path.join(root, f)).includes(v), false, `${f} (cache records, build history)`);
      }
    }
    // through the database API as well: cache inputs and build history
    const { openState } = await import('../../src/engine/index.js');
    const s = await openState({ root, cleanup: false });
    try {
      const dump = JSON.stringify(s.db.builds.listBuilds());
      for (const v of secretValues) assert.equal(dump.includes(v), false, 'builds table');
    } finally {
      s.close();
    }
    for (const v of secretValues) assert.equal(spawnSync('grep', ['-rl', v, root]).stdout.toString(), '', 'no file under the state dir holds the value');

    const req = await ctxOf({ Dockerfile: 'FROM busybox\nRUN --mount=type=secret,id=needed,required true\n' });
    const bad = await build(root, req);
    assert.notEqual(bad.code, 0);
    assert.match(bad.stderr, /secret "needed" is required but was not provided/);
  });

  test('cache: id defaults to the target, persists across builds, mode/uid/gid, ro, never in a layer', async (t) => {
    if (!requireIntegration(t)) return;
    const a = await ctxOf({
      Dockerfile: `FROM busybox
RUN --mount=type=cache,target=/c,uid=1000,gid=1000,mode=0700 sh -c 'stat -c "%a %u %g" /c > /cmeta; echo one >> /c/log; mkdir -p /c/sub; echo deep > /c/sub/f'
`,
    });
    const r1 = await build(root, a);
    assert.equal(r1.code, 0, r1.stderr);
    const f1 = await imageFiles(root, r1.meta['containerimage.digest']);
    assert.equal(f1.get('cmeta')?.content, '700 1000 1000\n');
    assert.equal([...f1.keys()].some((p) => p === 'c' || p.startsWith('c/')), false, 'cache contents and mount point stay out of the layer');
    const b = await ctxOf({
      Dockerfile: `FROM busybox
RUN --mount=type=cache,id=/c,target=/other,uid=1000,gid=1000,mode=0700 sh -c 'cat /other/log /other/sub/f > /seen'
RUN --mount=type=cache,target=/c,ro sh -c 'ls /c | wc -l > /plain; if touch /c/x 2>/dev/null; then echo writable; else echo readonly; fi > /ro'
`,
    });
    const r2 = await build(root, b);
    assert.equal(r2.code, 0, r2.stderr);
    const f2 = await imageFiles(root, r2.meta['containerimage.digest']);
    assert.equal(f2.get('seen')?.content, 'one\ndeep\n');
    assert.equal(f2.get('ro')?.content, 'readonly\n');
    // as in BuildKit, uid/gid/mode make their own cache: the plain id=/c is another, empty one
    assert.equal(f2.get('plain')?.content, '0\n');
    // a cache's contents never enter a key: a rebuild is cached although the cache changed in between
    const again = await build(root, a);
    assert.equal(again.code, 0, again.stderr);
    assert.ok(stepFlags(again.meta).every(Boolean), JSON.stringify(again.meta['kiln.steps']));
    const ls = JSON.parse(kilnSync(['cache', 'ls', '--root', root, '--format', 'json']).stdout) as Array<{ id: string; key: string; uses: number; builds: string[]; size: number }>;
    const owned = ls.find((m) => m.id === '/c' && m.key !== '/c')!;
    assert.equal(owned.uses, 2);
    assert.equal(owned.builds.length, 2);
    assert.ok(owned.size > 0);
    assert.equal(ls.find((m) => m.key === '/c')?.uses, 1);
    const rm = kilnSync(['cache', 'rm', '--root', root, '/c']);
    assert.equal(rm.code, 0, rm.stderr);
    assert.equal(rm.stdout.trim().split('\n').length, 2, 'rm by id removes every variant of it');
    assert.equal(existsSync(cacheMountDir(root, '/c')), false);
    assert.match(kilnSync(['cache', 'rm', '--root', root, '/c']).stderr, /no cache mount with id "\/c"/);
  });

  test('cache from= a stage holds that stage\'s files on first use; a changed stage gives a fresh cache', async (t) => {
    if (!requireIntegration(t)) return;
    const df = (word: string): string => `FROM busybox AS seed
RUN mkdir -p /data && echo ${word} > /data/file
FROM busybox
RUN --mount=type=cache,id=seeded,target=/m,from=seed,source=/data sh -c 'cat /m/file > /got; echo extra > /m/added'
`;
    const ctx = await ctxOf({ Dockerfile: df('seeded-one') });
    const r1 = await build(root, ctx);
    assert.equal(r1.code, 0, r1.stderr);
    assert.equal((await imageFiles(root, r1.meta['containerimage.digest'])).get('got')?.content, 'seeded-one\n');
    await fsp.writeFile(path.join(ctx, 'Dockerfile'), df('seeded-two'));
    const r2 = await build(root, ctx);
    assert.equal(r2.code, 0, r2.stderr);
    assert.equal((await imageFiles(root, r2.meta['containerimage.digest'])).get('got')?.content, 'seeded-two\n');
  });

  test('bind: context (.dockerignore applied, read-only, content in the key), rw discards writes, from a stage', async (t) => {
    if (!requireIntegration(t)) return;
    const ctx = await ctxOf({
      Dockerfile: `FROM busybox AS other
RUN echo fromstage > /f
FROM busybox
RUN --mount=type=bind,source=app,target=/app sh -c 'cat /app/a.txt > /a; ls /app > /list; if touch /app/x 2>/dev/null; then echo rw; else echo ro; fi > /mode'
RUN --mount=type=bind,source=app,target=/app,rw sh -c 'echo changed > /app/a.txt; cat /app/a.txt > /rwseen'
RUN --mount=type=bind,from=other,source=/f,target=/g cat /g > /fromstage
`,
      'app/a.txt': 'v1\n',
      'app/b.txt': 'b\n',
      'app/private.key': 'do not show\n',
      '.dockerignore': 'app/private.key\n',
    });
    const r1 = await build(root, ctx);
    assert.equal(r1.code, 0, r1.stderr);
    const f = await imageFiles(root, r1.meta['containerimage.digest']);
    assert.equal(f.get('a')?.content, 'v1\n');
    assert.equal(f.get('list')?.content, 'a.txt\nb.txt\n');
    assert.equal(f.get('mode')?.content, 'ro\n');
    assert.equal(f.get('rwseen')?.content, 'changed\n');
    assert.equal(f.get('fromstage')?.content, 'fromstage\n');
    assert.equal(readFileSync(path.join(ctx, 'app', 'a.txt'), 'utf8'), 'v1\n', 'rw writes never reach the context');
    assert.equal([...f.keys()].some((p) => p.startsWith('app') || p === 'g'), false);
    // touch only: cached; a changed file under the bind: the step reruns
    utimesSync(path.join(ctx, 'app', 'a.txt'), new Date(Date.now() + 5000), new Date(Date.now() + 5000));
    const r2 = await build(root, ctx);
    assert.ok(stepFlags(r2.meta).every(Boolean), JSON.stringify(r2.meta['kiln.steps']));
    await fsp.writeFile(path.join(ctx, 'app', 'a.txt'), 'v2\n');
    const r3 = await build(root, ctx);
    assert.equal(r3.code, 0, r3.stderr);
    assert.equal((await imageFiles(root, r3.meta['containerimage.digest'])).get('a')?.content, 'v2\n');
    // a symlink in the context cannot reach the host
    await fsp.symlink('/etc', path.join(ctx, 'hostlink'));
    await fsp.writeFile(path.join(ctx, 'Dockerfile'), 'FROM busybox\nRUN --mount=type=bind,source=hostlink,target=/h ls /h > /hl\n');
    const r4 = await build(root, ctx);
    assert.notEqual(r4.code, 0);
    assert.match(r4.stderr, /not in the build context|leaves the build context/);
  });

  test('tmpfs size, --network=none, type=ssh and --security=insecure refused clearly', async (t) => {
    if (!requireIntegration(t)) return;
    const ctx = await ctxOf({
      Dockerfile: `FROM busybox
RUN --mount=type=tmpfs,target=/t,size=2m sh -c 'df -k /t | tail -1 | awk "{print \\$2}" > /tsize; echo x > /t/y'
RUN --network=none sh -c 'ls /sys/class/net | tr "\\n" " " > /nets'
RUN --network=host sh -c 'ls /sys/class/net | wc -l > /hostnets'
`,
    });
    const r = await build(root, ctx);
    assert.equal(r.code, 0, r.stderr);
    const f = await imageFiles(root, r.meta['containerimage.digest']);
    assert.equal(f.get('tsize')?.content, '2048\n');
    assert.equal([...f.keys()].some((p) => p.startsWith('t/') || p === 't'), false);
    assert.equal(f.get('nets')?.content, 'lo ');
    const hostIfaces = readdirSync('/sys/class/net').length;
    assert.equal(f.get('hostnets')?.content, `${hostIfaces}\n`);
    const ssh = await build(root, await ctxOf({ Dockerfile: 'FROM busybox\nRUN --mount=type=ssh true\n' }));
    assert.notEqual(ssh.code, 0);
    assert.match(ssh.stderr, /type=ssh is not supported/);
    const ins = await build(root, await ctxOf({ Dockerfile: 'FROM busybox\nRUN --security=insecure true\n' }));
    assert.notEqual(ins.code, 0);
    assert.match(ins.stderr, /--security=insecure is not allowed/);
  });

  describe('sharing across two concurrent builds of one state dir', () => {
    /** wait (in the container) for a file, at most 60 s */
    const waitFor = (p: string): string => `{ w=0; while [ ! -e ${p} ] && [ $w -lt 600 ]; do sleep 0.1; w=$((w+1)); done; [ -e ${p} ]; }`;
    const twoBuilds = async (mk: (me: string, other: string) => string): Promise<{ a: Awaited<ReturnType<typeof build>>; b: Awaited<ReturnType<typeof build>> }> => {
      const ca = await ctxOf({ Dockerfile: mk('A', 'B') });
      const cb = await ctxOf({ Dockerfile: mk('B', 'A') });
      const [a, b] = await Promise.all([build(root, ca), build(root, cb)]);
      return { a, b };
    };
    const rdv = (name: string): string => path.join(cacheMountDir(root, name), 'data');

    test('shared: both builds see each other\'s files while both run', async (t) => {
      if (!requireIntegration(t)) return;
      const { a, b } = await twoBuilds((me, other) => `FROM busybox
RUN --mount=type=cache,id=shr,target=/c,sharing=shared sh -c 'touch /c/in-${me}; ${waitFor(`/c/in-${other}`)}; ls /c | tr "\\n" " " > /seen'
`);
      assert.equal(a.code, 0, a.stderr);
      assert.equal(b.code, 0, b.stderr);
      for (const r of [a, b]) assert.equal((await imageFiles(root, r.meta['containerimage.digest'])).get('seen')?.content, 'in-A in-B ');
    });

    test('private: each concurrent build gets its own copy', async (t) => {
      if (!requireIntegration(t)) return;
      const { a, b } = await twoBuilds((me, other) => `FROM busybox
RUN --mount=type=cache,id=prv,target=/c,sharing=private --mount=type=cache,id=prv-rdv,target=/r \\
    sh -c 'touch /c/mine-${me}; touch /r/in-${me}; ${waitFor(`/r/in-${other}`)}; ls /c | tr "\\n" " " > /seen'
`);
      assert.equal(a.code, 0, a.stderr);
      assert.equal(b.code, 0, b.stderr);
      assert.equal((await imageFiles(root, a.meta['containerimage.digest'])).get('seen')?.content, 'mine-A ');
      assert.equal((await imageFiles(root, b.meta['containerimage.digest'])).get('seen')?.content, 'mine-B ');
    });

    test('locked: a second writer waits for the first; writes never interleave', async (t) => {
      if (!requireIntegration(t)) return;
      // the host opens the gate only once the second build is waiting for the lock, so the builds truly overlap
      const df = (me: string): string => `FROM busybox
RUN --mount=type=cache,id=lck,target=/c,sharing=locked --mount=type=cache,id=lck-rdv,target=/r \\
    sh -c 'for i in 1 2 3 4 5; do [ -e /c/busy ] && echo OVERLAP >> /c/log; touch /c/busy; echo ${me}$i >> /c/log; sleep 0.1; rm /c/busy; [ $i = 2 ] && touch /r/in-${me} && ${waitFor('/r/go')}; done; echo ok > /done'
`;
      const ca = await ctxOf({ Dockerfile: df('A') });
      const cb = await ctxOf({ Dockerfile: df('B') });
      const pa = build(root, ca);
      const deadline = Date.now() + 60_000;
      while (!existsSync(path.join(rdv('lck-rdv'), 'in-A')) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      assert.ok(existsSync(path.join(rdv('lck-rdv'), 'in-A')), 'build A entered its RUN');
      const pb = build(root, cb);
      const users = path.join(cacheMountDir(root, cacheMountKey({ id: 'lck', target: '/c' })), 'users');
      while (readdirSync(users).length < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      assert.equal(readdirSync(users).length, 2, 'build B is waiting for the lock');
      await new Promise((r) => setTimeout(r, 300));
      assert.equal(existsSync(path.join(rdv('lck-rdv'), 'in-B')), false, 'B may not start while A holds the lock');
      writeFileSync(path.join(rdv('lck-rdv'), 'go'), '');
      const [a, b] = await Promise.all([pa, pb]);
      assert.equal(a.code, 0, a.stderr);
      assert.equal(b.code, 0, b.stderr);
      const log = readFileSync(path.join(rdv('lck'), 'log'), 'utf8');
      assert.equal(log, 'A1\nA2\nA3\nA4\nA5\nB1\nB2\nB3\nB4\nB5\n');
      assert.doesNotMatch(log, /OVERLAP/);
    });
  });

  test('--lang-cache: caches mounted on every RUN (uid 1000), env in RUN and image, nothing in layers; warm copies them in', async (t) => {
    if (!requireIntegration(t)) return;
    const ctx = await ctxOf({
      Dockerfile: `FROM busybox
USER 1000:1000
RUN sh -c 'echo "pip-\${PIP_CACHE_DIR}-\${GOMODCACHE}" > /tmp/env; echo wheel > $PIP_CACHE_DIR/pkg.whl; stat -c "%u %g %a" $PIP_CACHE_DIR > /tmp/owner'
`,
    });
    const r1 = await build(root, ctx, ['--lang-cache']);
    assert.equal(r1.code, 0, r1.stderr);
    const f1 = await imageFiles(root, r1.meta['containerimage.digest']);
    assert.equal(f1.get('tmp/env')?.content, 'pip-/cache/pip-/cache/go/mod\n');
    assert.equal(f1.get('tmp/owner')?.content, '1000 1000 755\n');
    assert.equal([...f1.keys()].some((p) => p === 'cache' || p.startsWith('cache/')), false, '/cache stays out of the layers');
    const { config } = await readImage(root, r1.meta['containerimage.digest']);
    assert.ok(config.config.Env?.includes('PIP_CACHE_DIR=/cache/pip'));
    assert.ok(config.config.Env?.includes('GOCACHE=/cache/go/build'));
    // another build (another step) finds what the first downloaded
    await fsp.writeFile(path.join(ctx, 'Dockerfile'), 'FROM busybox\nRUN ls $PIP_CACHE_DIR > /found\n');
    const r2 = await build(root, ctx, ['--lang-cache', '--lang-cache-tools', 'pip']);
    assert.equal(r2.code, 0, r2.stderr);
    assert.equal((await imageFiles(root, r2.meta['containerimage.digest'])).get('found')?.content, 'pkg.whl\n');
    // warm: the caches are copied into the image, owned by the cache owner
    const r3 = await build(root, ctx, ['--lang-cache', '--lang-cache-tools=pip', '--lang-cache-warm', '-t', 'warm:1']);
    assert.equal(r3.code, 0, r3.stderr);
    const f3 = await imageFiles(root, r3.meta['containerimage.digest']);
    assert.equal(f3.get('cache/pip/pkg.whl')?.content, 'wheel\n');
    assert.equal(f3.get('cache/pip')?.uid, 1000);
    // and a container started with a fresh volume on /cache starts with them (the volume is filled from the image)
    const run = kilnSync(['run', '--root', root, '-v', 'warmvol:/cache', 'warm:1', 'sh', '-c', 'ls $PIP_CACHE_DIR']);
    assert.equal(run.code, 0, run.stderr);
    assert.equal(run.stdout, 'pkg.whl\n');
  });
});

describe('apt-get under locked cache mounts on a debootstrapped Debian base', { concurrency: false }, () => {
  let root = '';
  let ctx = '';
  let sources = '';
  before(async () => {
    if (integrationBlocker()) return;
    const mk = spawnSync('bash', [path.join(repoRoot, 'test', 'helpers', 'make-debian-rootfs.sh')], { encoding: 'utf8' });
    if (mk.status !== 0) throw new Error(`debootstrap failed: ${mk.stderr}`);
    const tar = mk.stdout.trim().split('\n').pop()!;
    sources = readdirSync('/etc/apt/sources.list.d').filter((f) => f.endsWith('.sources')).map((f) => path.join('/etc/apt/sources.list.d', f))[0] ?? '';
    root = await newRoot();
    const imp = kilnSync(['import', '--root', root, tar, 'debian:bookworm']);
    if (imp.code !== 0) throw new Error(imp.stderr);
    ctx = await newContext({ Dockerfile: aptDockerfile('jq') });
  });
  after(async () => {
    if (root) await cleanup(root, ctx);
  });
  const aptDockerfile = (pkgs: string): string => `FROM debian:bookworm
RUN rm -f /etc/apt/apt.conf.d/docker-clean && echo 'Binary::apt::APT::Keep-Downloaded-Packages "true";' > /etc/apt/apt.conf.d/keep-cache
RUN --mount=type=cache,target=/var/cache/apt,sharing=locked --mount=type=cache,target=/var/lib/apt,sharing=locked \\
    --mount=type=secret,id=aptsources,target=/etc/apt/sources.list.d/host.sources \\
    apt-get update && apt-get install -y --no-install-recommends ${pkgs}
`;
  /** package names apt downloaded, and the bytes it said it needed */
  const fetched = (out: string): { pkgs: string[]; needKb: number } => {
    const pkgs = [...out.matchAll(/Get:\d+ \S+ \S+ \S+ (\S+) \S+ \S+ \[[\d.,]+ [kM]?B\]/g)].map((m) => m[1]!);
    const need = /Need to get ([\d.,]+) ([kM]?B)/.exec(out);
    const kb = need ? Number(need[1]!.replace(/,/g, '')) * (need[2] === 'MB' ? 1000 : need[2] === 'kB' ? 1 : 0.001) : 0;
    return { pkgs, needKb: kb };
  };

  test('a second build with one more package downloads only that package; no .deb in any layer', async (t) => {
    if (!requireIntegration(t)) return;
    assert.ok(sources, 'this machine has a deb822 apt sources file');
    const r1 = await build(root, ctx, ['--secret', `id=aptsources,src=${sources}`]);
    assert.equal(r1.code, 0, r1.stderr);
    const first = fetched(r1.stderr);
    assert.ok(first.pkgs.includes('jq'), `first build downloads jq: ${first.pkgs.join(' ')}`);
    await fsp.writeFile(path.join(ctx, 'Dockerfile'), aptDockerfile('jq tree'));
    const r2 = await build(root, ctx, ['--secret', `id=aptsources,src=${sources}`]);
    assert.equal(r2.code, 0, r2.stderr);
    const second = fetched(r2.stderr);
    assert.deepEqual(second.pkgs, ['tree'], 'only the new package is fetched');
    assert.ok(second.needKb > 0 && second.needKb < 200, `needed ${second.needKb} kB`);
    const files = await imageFiles(root, r2.meta['containerimage.digest']);
    assert.ok(files.has('usr/bin/tree') && files.has('usr/bin/jq'));
    for (const digest of [r1.meta['containerimage.digest'], r2.meta['containerimage.digest']]) {
      const paths = await storedPaths(root, digest);
      assert.deepEqual(paths.filter((p) => p.endsWith('.deb')), [], 'no .deb in any layer');
      assert.deepEqual(paths.filter((p) => p.startsWith('var/lib/apt/lists/') && p !== 'var/lib/apt/lists/partial' && p !== 'var/lib/apt/lists/lock'), [], 'no package lists in any layer');
      assert.equal(paths.includes('etc/apt/sources.list.d/host.sources'), false, 'the apt sources secret is not stored');
    }
  });
});
