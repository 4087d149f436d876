/**
 * `kiln build --pull` and `--build-context` (issue 15), through the real `bin/kiln`, a real registry on loopback and
 * real runc steps: a changed remote tag is used only with --pull; a named local context is read in place, keyed by
 * the content each step reads (its own .dockerignore applied, mtime never counts); an image context stands in for
 * FROM / COPY --from / a whole stage.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { utimesSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { build, cachedFlags, cleanup, imageFiles, integrationBlocker, kiln, newContext, newRoot, requireIntegration } from '../helpers/kiln.js';
import { skipWithoutRegistry, startRegistry, type TestRegistry } from '../helpers/registry.js';

/** cached flag of the one step whose name contains `text` */
function cachedOf(meta: Parameters<typeof cachedFlags>[0], text: string): boolean {
  const hits = cachedFlags(meta).filter(([n]) => n.includes(text));
  assert.equal(hits.length, 1, `one step named like "${text}" in ${JSON.stringify(cachedFlags(meta))}`);
  return hits[0]![1];
}

describe('kiln build --pull and --build-context', { concurrency: false }, () => {
  let root = '';
  const dirs: string[] = [];

  before(async () => {
    if (integrationBlocker()) return;
    root = await newRoot();
    dirs.push(root);
  });

  after(async () => {
    await cleanup(...dirs);
  });

  test('--pull re-resolves a changed remote tag; without it the local image is used and the build is cached', async (t) => {
    if (!requireIntegration(t) || skipWithoutRegistry(t)) return;
    const reg: TestRegistry = await startRegistry();
    try {
      const publisher = await newRoot();
      dirs.push(publisher);
      const ref = `${reg.host}/base:latest`;
      const push = async (version: string): Promise<void> => {
        const c = await newContext({ Dockerfile: `FROM busybox:latest\nRUN echo ${version} > /base-version\n` });
        dirs.push(c);
        const r = await kiln(['build', '--root', publisher, '-q', '-t', ref, '--push', c]);
        assert.equal(r.code, 0, r.stderr);
      };
      await push('v1');
      const app = await newContext({ Dockerfile: `FROM ${ref}\nRUN cat /base-version > /seen\n` });
      dirs.push(app);
      const first = await build(root, app);
      assert.equal(first.code, 0, first.stderr);
      assert.equal((await imageFiles(root, first.meta['containerimage.digest'])).get('seen')?.content, 'v1\n');

      await push('v2');
      const local = await build(root, app);
      assert.equal(local.code, 0, local.stderr);
      assert.equal(local.meta['containerimage.digest'], first.meta['containerimage.digest'], 'without --pull: the local v1, all cached');
      assert.equal(cachedOf(local.meta, 'RUN cat'), true);
      assert.doesNotMatch(local.stderr, /pulled/);

      const pulled = await build(root, app, ['--pull']);
      assert.equal(pulled.code, 0, pulled.stderr);
      assert.match(pulled.stderr, new RegExp(`pulled ${ref.replace(/[.]/g, '\\.')} \\(sha256:[0-9a-f]{64}\\)`));
      assert.equal(cachedOf(pulled.meta, 'RUN cat'), false, 'the new base changes the key from FROM on');
      assert.equal((await imageFiles(root, pulled.meta['containerimage.digest'])).get('seen')?.content, 'v2\n');
      // the pull renamed the local image: a build without --pull now uses v2, cached
      const after2 = await build(root, app);
      assert.equal(after2.meta['containerimage.digest'], pulled.meta['containerimage.digest']);
      assert.equal(cachedOf(after2.meta, 'RUN cat'), true);

      const gone = await build(root, await newContext({ Dockerfile: 'FROM busybox:latest\n' }), ['--pull']);
      assert.equal(gone.code, 1, 'busybox:latest is only local: --pull cannot look it up');
      assert.match(gone.stderr, /--pull: cannot look up "busybox:latest" in its registry/);
    } finally {
      await reg.stop();
    }
  });

  test('--build-context NAME=DIR: COPY --from and RUN --mount from read it in place, keyed by what each reads', async (t) => {
    if (!requireIntegration(t)) return;
    const extra = await newContext({ 'a.txt': 'a1\n', 'sub/b.txt': 'b1\n', 'other.txt': 'o1\n', 'secret.key': 'hidden\n', '.dockerignore': 'secret.key\n' });
    const main = await newContext({
      Dockerfile: [
        'FROM busybox:latest',
        'COPY --from=extra a.txt /a',
        'RUN --mount=from=extra,source=sub,target=/mnt cat /mnt/b.txt > /b-via-mount',
        'COPY main.txt /main',
        '',
      ].join('\n'),
      'main.txt': 'main\n',
      // a file of the same name in the main context is not what COPY --from=extra reads
      'a.txt': 'main-a\n',
    });
    dirs.push(extra, main);
    const ctxFlag = ['--build-context', `extra=${extra}`];
    const b1 = await build(root, main, ctxFlag);
    assert.equal(b1.code, 0, b1.stderr);
    const f1 = await imageFiles(root, b1.meta['containerimage.digest']);
    assert.equal(f1.get('a')?.content, 'a1\n');
    assert.equal(f1.get('b-via-mount')?.content, 'b1\n');
    assert.equal(f1.get('main')?.content, 'main\n');

    writeFileSync(path.join(extra, 'other.txt'), 'o2\n'); // read by no step
    utimesSync(path.join(extra, 'a.txt'), new Date(), new Date(Date.now() + 5_000)); // mtime only
    const b2 = await build(root, main, ctxFlag);
    assert.equal(b2.code, 0, b2.stderr);
    assert.ok(cachedFlags(b2.meta).every(([, c]) => c), `all cached: ${JSON.stringify(cachedFlags(b2.meta))}`);

    writeFileSync(path.join(extra, 'sub', 'b.txt'), 'b2\n');
    const b3 = await build(root, main, ctxFlag);
    assert.equal(b3.code, 0, b3.stderr);
    assert.equal(cachedOf(b3.meta, 'COPY --from=extra a.txt'), true);
    assert.equal(cachedOf(b3.meta, 'RUN --mount'), false);
    assert.equal((await imageFiles(root, b3.meta['containerimage.digest'])).get('b-via-mount')?.content, 'b2\n');

    writeFileSync(path.join(extra, 'a.txt'), 'a2\n');
    const b4 = await build(root, main, ctxFlag);
    assert.equal(cachedOf(b4.meta, 'COPY --from=extra a.txt'), false);
    assert.equal((await imageFiles(root, b4.meta['containerimage.digest'])).get('a')?.content, 'a2\n');

    // FROM NAME of a local context: the folder's files (after its own .dockerignore) as the whole image
    const fromDir = await newContext({ Dockerfile: 'FROM extra\n' });
    dirs.push(fromDir);
    const b5 = await build(root, fromDir, ctxFlag);
    assert.equal(b5.code, 0, b5.stderr);
    const f5 = await imageFiles(root, b5.meta['containerimage.digest']);
    assert.equal(f5.get('a.txt')?.content, 'a2\n');
    assert.equal(f5.get('sub/b.txt')?.content, 'b2\n');
    assert.equal(f5.has('secret.key'), false, '.dockerignore of the named context applies');
  });

  test('--build-context NAME=docker-image://REF replaces FROM NAME, COPY --from=NAME and a whole stage called NAME', async (t) => {
    if (!requireIntegration(t)) return;
    const marker = await newContext({ Dockerfile: 'FROM busybox:latest\nRUN echo from-marker > /marker\n' });
    dirs.push(marker);
    const m = await kiln(['build', '--root', root, '-q', '-t', 'marker:1', marker]);
    assert.equal(m.code, 0, m.stderr);
    const ctx = await newContext({
      Dockerfile: [
        'FROM busybox:latest AS tools',
        'RUN exit 3',
        'FROM alpine:3.19',
        'COPY --from=tools /marker /from-stage',
        'COPY --from=other /marker /from-image',
        'RUN cat /marker > /seen',
        '',
      ].join('\n'),
    });
    dirs.push(ctx);
    const r = await build(root, ctx, ['--build-context', 'alpine:3.19=docker-image://marker:1', '--build-context', 'tools=docker-image://marker:1', '--build-context', 'other=docker-image://marker:1']);
    assert.equal(r.code, 0, `the stage "tools" (RUN exit 3) is replaced, not built: ${r.stderr}`);
    const files = await imageFiles(root, r.meta['containerimage.digest']);
    for (const f of ['marker', 'from-stage', 'from-image', 'seen']) assert.equal(files.get(f)?.content, 'from-marker\n', f);
    assert.equal(cachedFlags(r.meta).some(([n]) => n.includes('exit 3')), false);
  });

  test('--build-context: an unused name warns; malformed, missing and unsupported values are errors', async (t) => {
    if (!requireIntegration(t)) return;
    const ctx = await newContext({ Dockerfile: 'FROM busybox:latest\nRUN true\n' });
    dirs.push(ctx);
    const unused = await kiln(['build', '--root', root, '--progress=plain', '--build-context', `spare=${ctx}`, ctx]);
    assert.equal(unused.code, 0, unused.stderr);
    assert.match(unused.stderr, /\[Warning\] build context \[spare\] was not used/);
    for (const [value, msg] of [
      ['nameonly', /expected NAME=VALUE/],
      ['x=/no/such/folder', /no such folder/],
      ['x=https://example.com/src.tar', /https contexts are not supported/],
      ['x=oci-layout:///tmp/layout', /oci-layout contexts are not supported/],
      ['x=docker-image://Bad_Name', /invalid image name/],
    ] as const) {
      const bad = await kiln(['build', '--root', root, '--build-context', value, ctx]);
      assert.equal(bad.code, 1, value);
      assert.match(bad.stderr, msg, value);
    }
  });
});
