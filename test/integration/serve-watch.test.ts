/**
 * `kiln serve` watches the contexts of the builds handed to it: an unchanged context is not walked again (the
 * server's KILN_TRACE line says so), and every kind of change made between builds reaches the next image.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { build, cleanup, imageFiles, newContext, newRoot, requireIntegration } from '../helpers/kiln.js';
import { startServe, type ServeProcess } from '../helpers/serve.js';

/** Past the racy window (entries changed within 50 ms are never kept): a wait, not a timing assertion. */
const settle = (): Promise<unknown> => sleep(150);

describe('kiln serve: watched contexts', () => {
  let root: string;
  let ctx: string;
  let server: ServeProcess | undefined;
  let ok = true;
  let traces = '';

  before(async (t) => {
    ok = requireIntegration(t as never);
    if (!ok) return;
    root = await newRoot();
    ctx = await newContext({
      Dockerfile: 'FROM busybox:latest\nCOPY . /app\n',
      'a/one.txt': 'one\n',
      'a/two.txt': 'two\n',
      'b/sub/three.txt': 'three\n',
      'keep.txt': 'keep\n',
    });
    server = await startServe(root, [], { env: { KILN_TRACE: '1' } });
    server.proc.stderr!.on('data', (c: Buffer) => (traces += c.toString()));
  });

  after(async () => {
    await server?.stop();
    await cleanup(...(root ? [root] : []), ...(ctx ? [ctx] : []));
  });

  /** A handed-off build: its COPY step's cached flag, the server's trace line for its sources, the image's /app. */
  async function handedBuild(): Promise<{ copyCached: boolean; allCached: boolean; sources: string; app: Map<string, { type: string; mode: number; content?: string; linkname?: string }> }> {
    const from = traces.length;
    const r = await build(root, ctx, ['-t', 'watched:1']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /handing the build to kiln serve/);
    const steps = r.meta['kiln.steps'];
    const copy = steps.find((s) => /\bCOPY \. \/app/.test(s.name));
    assert.ok(copy, JSON.stringify(steps));
    const sources = traces.slice(from).match(/\[trace\] sources \.: .*/g) ?? [];
    assert.equal(sources.length, 1, `one resolution of the COPY's sources: ${traces.slice(from)}`);
    const app = new Map<string, { type: string; mode: number; content?: string; linkname?: string }>();
    for (const [p, f] of await imageFiles(root, r.meta['containerimage.digest'])) {
      if (p.startsWith('app/')) app.set(p.slice(4), { type: f.type, mode: f.mode & 0o7777, ...(f.content !== undefined ? { content: f.content } : {}), ...(f.linkname ? { linkname: f.linkname } : {}) });
    }
    return { copyCached: copy.cached, allCached: steps.every((s) => s.cached), sources: sources[0]!, app };
  }

  test('an unchanged context is recalled, not walked; each change between builds misses the COPY and reaches the image', async (t) => {
    if (!ok) return t.skip('integration');
    await settle();
    const first = await handedBuild();
    assert.equal(first.copyCached, false);
    assert.match(first.sources, /walked/);
    assert.equal(first.app.get('a/one.txt')?.content, 'one\n');
    const changes: Array<[string, () => Promise<void>, (app: Awaited<ReturnType<typeof handedBuild>>['app']) => void]> = [
      ['add a file', async () => fsp.writeFile(path.join(ctx, 'b', 'new.txt'), 'new\n'), (app) => assert.equal(app.get('b/new.txt')?.content, 'new\n')],
      ['edit bytes keeping size and mtime (touch -r)', async () => {
        const f = path.join(ctx, 'a', 'one.txt');
        const ref = `${ctx}-ref`;
        await fsp.writeFile(ref, '');
        execFileSync('touch', ['-r', f, ref]);
        const before = await fsp.stat(f);
        await fsp.writeFile(f, 'ONE\n');
        execFileSync('touch', ['-r', ref, f]);
        await fsp.rm(ref);
        const now = await fsp.stat(f);
        assert.deepEqual([now.size, now.mtimeMs], [before.size, before.mtimeMs]);
      }, (app) => assert.equal(app.get('a/one.txt')?.content, 'ONE\n')],
      ['chmod a file', async () => fsp.chmod(path.join(ctx, 'keep.txt'), 0o600), (app) => assert.equal(app.get('keep.txt')?.mode, 0o600)],
      ['rename a directory', async () => fsp.rename(path.join(ctx, 'a'), path.join(ctx, 'c')), (app) => {
        assert.equal(app.has('a/one.txt'), false);
        assert.equal(app.get('c/one.txt')?.content, 'ONE\n');
        assert.equal(app.get('c/two.txt')?.content, 'two\n');
      }],
      ['delete a file', async () => fsp.rm(path.join(ctx, 'b', 'sub', 'three.txt')), (app) => {
        assert.equal(app.has('b/sub/three.txt'), false);
        assert.equal(app.get('b/sub')?.type, 'directory');
      }],
      ['replace a file with a symlink', async () => {
        await fsp.rm(path.join(ctx, 'c', 'two.txt'));
        await fsp.symlink('one.txt', path.join(ctx, 'c', 'two.txt'));
      }, (app) => assert.deepEqual([app.get('c/two.txt')?.type, app.get('c/two.txt')?.linkname], ['symlink', 'one.txt'])],
    ];
    for (const [what, change, check] of changes) {
      const unchanged = await handedBuild();
      assert.equal(unchanged.allCached, true, `${what}: the unchanged rebuild before it is all cached`);
      assert.match(unchanged.sources, /recalled \(not walked\)/, `${what}: the unchanged context was not walked`);
      await change();
      await settle();
      const changed = await handedBuild();
      assert.equal(changed.copyCached, false, `${what}: the COPY misses`);
      assert.doesNotMatch(changed.sources, /recalled/, what);
      check(changed.app);
    }
    const last = await handedBuild();
    assert.equal(last.allCached, true);
    assert.match(last.sources, /recalled \(not walked\)/);
  });
});
