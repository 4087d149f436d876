/**
 * Cache correctness (issue 10): the three stale hits a new user found, each rebuilt after the edit with the image's
 * bytes read back, plus the content-keyed cases (re-compressed ADD archive, a stage change outside a COPY --from path).
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { listLayer } from '../../src/layer/index.js';
import { build, cleanup, imageFiles, newContext, newRoot, readImage, requireIntegration } from '../helpers/kiln.js';

/** The entries of an image's last layer (paths without a leading './'). */
async function lastLayer(root: string, digest: string): Promise<Awaited<ReturnType<typeof listLayer>>> {
  const { manifest } = await readImage(root, digest);
  const blob = path.join(root, 'content', 'blobs', 'sha256', manifest.layers[manifest.layers.length - 1]!.digest.slice(7));
  const entries = await listLayer({ source: blob, withContent: true });
  return entries.map((e) => ({ ...e, path: e.path.replace(/^(\.\/|\/)+/, '').replace(/\/$/, '') }));
}

function stepCached(meta: Awaited<ReturnType<typeof build>>['meta'], text: string): boolean {
  const s = meta['kiln.steps'].find((x) => x.name.includes(text));
  assert.ok(s, `no step ${text} in ${JSON.stringify(meta['kiln.steps'])}`);
  return s.cached;
}

describe('stale hits of issue 10', () => {
  test('COPY of a symlink: editing the file it points to misses, and the image has the new bytes', async (t) => {
    if (!requireIntegration(t)) return;
    const ctx = await newContext({ Dockerfile: 'FROM busybox:latest\nCOPY link /x\n', 'real.txt': 'version one\n' });
    fs.symlinkSync('real.txt', path.join(ctx, 'link'));
    const root = await newRoot();
    t.after(() => cleanup(ctx, root));
    const first = await build(root, ctx);
    assert.equal(first.code, 0, first.stderr);
    assert.equal((await imageFiles(root, first.meta['containerimage.digest'])).get('x')?.content, 'version one\n');
    fs.writeFileSync(path.join(ctx, 'real.txt'), 'version two, longer\n');
    const second = await build(root, ctx);
    assert.equal(second.code, 0, second.stderr);
    assert.equal(stepCached(second.meta, 'COPY link'), false);
    assert.equal((await imageFiles(root, second.meta['containerimage.digest'])).get('x')?.content, 'version two, longer\n');
  });

  test('a hardlink pair split into two files with the same bytes misses, and the image no longer links them', async (t) => {
    if (!requireIntegration(t)) return;
    const ctx = await newContext({ Dockerfile: 'FROM busybox:latest\nCOPY d /d\n', 'd/a': 'same bytes\n' });
    fs.linkSync(path.join(ctx, 'd/a'), path.join(ctx, 'd/b'));
    const root = await newRoot();
    t.after(() => cleanup(ctx, root));
    const first = await build(root, ctx);
    assert.equal(first.code, 0, first.stderr);
    const linked = await lastLayer(root, first.meta['containerimage.digest']);
    assert.ok(linked.some((e) => e.type === 'link'), `expected a hardlink in ${JSON.stringify(linked.map((e) => [e.path, e.type]))}`);
    // split: same bytes, same mode, mtime put back
    const st = fs.statSync(path.join(ctx, 'd/b'));
    fs.rmSync(path.join(ctx, 'd/b'));
    fs.writeFileSync(path.join(ctx, 'd/b'), 'same bytes\n');
    fs.chmodSync(path.join(ctx, 'd/b'), st.mode & 0o7777);
    fs.utimesSync(path.join(ctx, 'd/b'), st.atime, st.mtime);
    fs.utimesSync(path.join(ctx, 'd'), st.atime, st.mtime);
    const second = await build(root, ctx);
    assert.equal(second.code, 0, second.stderr);
    assert.equal(stepCached(second.meta, 'COPY d'), false);
    const split = await lastLayer(root, second.meta['containerimage.digest']);
    assert.ok(!split.some((e) => e.type === 'link'), `still linked: ${JSON.stringify(split.map((e) => [e.path, e.type]))}`);
    for (const p of ['d/a', 'd/b']) assert.equal(split.find((e) => e.path === p)?.content?.toString(), 'same bytes\n');
  });

  test('a changed user.* xattr misses, and the layer carries the new value', async (t) => {
    if (!requireIntegration(t)) return;
    const ctx = await newContext({ Dockerfile: 'FROM busybox:latest\nCOPY f /f\n', f: 'content\n' });
    execFileSync('setfattr', ['-n', 'user.note', '-v', 'one', path.join(ctx, 'f')]);
    const root = await newRoot();
    t.after(() => cleanup(ctx, root));
    const first = await build(root, ctx);
    assert.equal(first.code, 0, first.stderr);
    assert.equal((await lastLayer(root, first.meta['containerimage.digest'])).find((e) => e.path === 'f')?.xattrs?.['user.note'], 'one');
    execFileSync('setfattr', ['-n', 'user.note', '-v', 'two', path.join(ctx, 'f')]);
    const second = await build(root, ctx);
    assert.equal(second.code, 0, second.stderr);
    assert.equal(stepCached(second.meta, 'COPY f'), false);
    assert.equal((await lastLayer(root, second.meta['containerimage.digest'])).find((e) => e.path === 'f')?.xattrs?.['user.note'], 'two');
  });
});

describe('content, not container bytes', () => {
  test('re-compressing an ADDed archive keeps ADD and later steps cached', async (t) => {
    if (!requireIntegration(t)) return;
    const ctx = await newContext({ Dockerfile: 'FROM busybox:latest\nADD a.tar.gz /out/\nRUN cat /out/in/x > /copy\n', 'src/in/x': 'archived\n' });
    const tarball = (level: string): void => {
      execFileSync('sh', ['-c', `tar -C src --mtime=@1000 --owner=0 --group=0 -cf - in | gzip ${level} -n > a.tar.gz`], { cwd: ctx });
    };
    tarball('-1');
    fs.writeFileSync(path.join(ctx, '.dockerignore'), 'src\n');
    const root = await newRoot();
    t.after(() => cleanup(ctx, root));
    const first = await build(root, ctx);
    assert.equal(first.code, 0, first.stderr);
    const before = fs.readFileSync(path.join(ctx, 'a.tar.gz'));
    tarball('-9');
    // gzip -9 of a tiny tar may equal -1: add a gzip header name so the container bytes surely differ
    if (fs.readFileSync(path.join(ctx, 'a.tar.gz')).equals(before)) {
      execFileSync('sh', ['-c', 'tar -C src --mtime=@1000 --owner=0 --group=0 -cf in.tar in && gzip -9 -c in.tar > a.tar.gz && rm in.tar'], { cwd: ctx });
    }
    assert.ok(!fs.readFileSync(path.join(ctx, 'a.tar.gz')).equals(before), 'the archive bytes should differ');
    const second = await build(root, ctx);
    assert.equal(second.code, 0, second.stderr);
    assert.equal(stepCached(second.meta, 'ADD a.tar.gz'), true);
    assert.equal(stepCached(second.meta, 'RUN cat'), true);
    // and a change of the archived content misses
    fs.writeFileSync(path.join(ctx, 'src/in/x'), 'changed\n');
    tarball('-1');
    const third = await build(root, ctx);
    assert.equal(third.code, 0, third.stderr);
    assert.equal(stepCached(third.meta, 'ADD a.tar.gz'), false);
    assert.equal((await imageFiles(root, third.meta['containerimage.digest'])).get('copy')?.content, 'changed\n');
  });

  test('a stage change outside the COPY --from path keeps the COPY cached; a change inside misses', async (t) => {
    if (!requireIntegration(t)) return;
    const df = (other: string, inside: string): string =>
      `FROM busybox:latest AS s\nRUN mkdir /dir && echo ${inside} > /dir/f && echo ${other} > /other\n` +
      'FROM busybox:latest\nCOPY --from=s /dir /got\nRUN cat /got/f > /seen\n';
    const ctx = await newContext({ Dockerfile: df('one', 'in') });
    const root = await newRoot();
    t.after(() => cleanup(ctx, root));
    const first = await build(root, ctx);
    assert.equal(first.code, 0, first.stderr);
    fs.writeFileSync(path.join(ctx, 'Dockerfile'), df('two', 'in'));
    const second = await build(root, ctx);
    assert.equal(second.code, 0, second.stderr);
    assert.equal(stepCached(second.meta, 'RUN mkdir'), false);
    assert.equal(stepCached(second.meta, 'COPY --from=s'), true);
    assert.equal(stepCached(second.meta, 'RUN cat'), true);
    fs.writeFileSync(path.join(ctx, 'Dockerfile'), df('two', 'changed'));
    const third = await build(root, ctx);
    assert.equal(third.code, 0, third.stderr);
    assert.equal(stepCached(third.meta, 'COPY --from=s'), false);
    assert.equal((await imageFiles(root, third.meta['containerimage.digest'])).get('seen')?.content, 'changed\n');
  });
});

describe('bounded input: file names and sockets (issue 14, item 5)', () => {
  test('a unix socket in the context is skipped as Docker skips it', async (t) => {
    if (!requireIntegration(t)) return;
    const ctx = await newContext({ Dockerfile: 'FROM busybox:latest\nCOPY . /app/\n', 'keep.txt': 'kept\n' });
    const { createServer } = await import('node:net');
    const server = createServer().listen(path.join(ctx, 'agent.sock'));
    await new Promise((r) => server.once('listening', r));
    const root = await newRoot();
    t.after(async () => {
      server.close();
      await cleanup(ctx, root);
    });
    const r = await build(root, ctx);
    assert.equal(r.code, 0, r.stderr);
    const files = await imageFiles(root, r.meta['containerimage.digest']);
    assert.equal(files.get('app/keep.txt')?.content, 'kept\n');
    assert.equal(files.has('app/agent.sock'), false);
  });

  test('a file name that is not UTF-8 is refused with an error naming it, never silently dropped', async (t) => {
    if (!requireIntegration(t)) return;
    const ctx = await newContext({ Dockerfile: 'FROM busybox:latest\nCOPY d /d\n', 'd/ok.txt': 'ok\n' });
    fs.writeFileSync(Buffer.concat([Buffer.from(`${ctx}/d/caf`), Buffer.from([0xe9, 0x2e, 0x74, 0x78, 0x74])]), 'latin-1 name\n');
    const root = await newRoot();
    t.after(() => cleanup(ctx, root));
    const r = await build(root, ctx);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /Dockerfile:2/);
    assert.match(r.stderr, /d\/caf\\xe9\.txt" is not valid UTF-8/);
    assert.doesNotMatch(r.stderr, /at .*\.js:\d+/, 'no stack trace');
    // excluded by .dockerignore it is not sent, so the build goes on
    fs.writeFileSync(path.join(ctx, '.dockerignore'), 'd/caf*\n');
    const ok = await build(root, ctx);
    assert.equal(ok.code, 0, ok.stderr);
    assert.equal((await imageFiles(root, ok.meta['containerimage.digest'])).get('d/ok.txt')?.content, 'ok\n');
  });
});

describe('regressions found by the cache property', () => {
  // seed 20261203 (scenario 8): a RUN bind mount of a .dockerignore-filtered context hardlinks context files into a
  // temp tree, which moves their ctime; a COPY of the same file in a parallel stage, resolved before that, must still
  // copy (its content did not change) instead of failing as "changed while the build was reading it". The failure
  // depended on timing (the seed hit it under load; this test did not reproduce it on an idle run): the fixed seed of
  // cache-property.test.ts is the same seed and replays it as well.
  test('RUN --mount=type=bind of a filtered context in parallel with a COPY of the same file', async (t) => {
    if (!requireIntegration(t)) return;
    // many files, so that the copy and the bind mount's hardlinking overlap in time
    const many: Record<string, string> = {};
    for (let i = 0; i < 3000; i++) many[`x/f${i}`] = `${i}\n`;
    const ctx = await newContext({
      Dockerfile: 'FROM busybox:latest AS s\nCOPY x /s/\nFROM busybox:latest\nRUN --mount=type=bind,target=/m cat /m/x/a > /seen\nCOPY --from=s /s/a /a\n',
      ...many,
      'x/a': 'bound and copied\n',
      'x/d.log': 'ignored\n',
      '.dockerignore': '*.log\nx/*.log\n',
    });
    const root = await newRoot();
    t.after(() => cleanup(ctx, root));
    for (let i = 0; i < 4; i++) {
      const r = await build(root, ctx, i > 0 ? ['--no-cache'] : []);
      assert.equal(r.code, 0, r.stderr);
      const files = await imageFiles(root, r.meta['containerimage.digest']);
      assert.equal(files.get('a')?.content, 'bound and copied\n');
      assert.equal(files.get('seen')?.content, 'bound and copied\n');
    }
  });
});
