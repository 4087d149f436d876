/**
 * Hermetic incremental COPY (issue 10, item 4): a COPY that reruns after a small context edit must give the layer a
 * full copy makes, and nothing about the cache's history may be visible to a later RUN — in particular a file that
 * was never hardlinked must not show a link count of 2 (which reusing files by hardlink from the previous result
 * did). Unchanged parts of the layer are still reused, as gzip members (src/layer's chunk cache).
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, promises as fsp, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { listLayer } from '../../src/layer/index.js';
import { cleanup, imageFiles, kiln, newContext, newRoot, readImage, requireIntegration } from '../helpers/kiln.js';

// into /etc: `group` replaces the base image's file (the copy leaves a whiteout there first)
const DOCKERFILE = 'FROM busybox:latest\nCOPY --chown=7:8 . /etc/\nRUN find /etc/sub -type f -exec stat -c "%h %n" {} + | sort > /links\n';

async function buildOnce(root: string, ctx: string): Promise<string> {
  const meta = path.join(path.dirname(ctx), `${path.basename(ctx)}-meta.json`);
  const r = await kiln(['build', '--root', root, '--progress=plain', '--metadata-file', meta, ctx]);
  assert.equal(r.code, 0, r.stderr);
  const digest = (JSON.parse(await fsp.readFile(meta, 'utf8')) as Record<string, string>)['containerimage.digest']!;
  await fsp.rm(meta, { force: true });
  return digest;
}

/** The COPY layer (second of the image): its diffId and its listing with contents. */
async function copyLayer(root: string, digest: string): Promise<{ diffId: string; entries: unknown[] }> {
  const { manifest, config } = await readImage(root, digest);
  const blob = path.join(root, 'content', 'blobs', 'sha256', manifest.layers[1]!.digest.slice(7));
  const entries = await listLayer({ source: blob, withContent: true });
  return { diffId: config.rootfs.diff_ids[1]!, entries: entries.map((e) => ({ ...e, content: e.content?.toString('hex') })) };
}

describe('incremental COPY', () => {
  test('an edited context gives the same layer as a full copy, and a later RUN sees link count 1 everywhere', async (t) => {
    if (!requireIntegration(t)) return;
    const files: Record<string, string> = { Dockerfile: DOCKERFILE, 'top.txt': 'top\n', 'gone.txt': 'bye\n', 'mode.sh': 'echo\n', group: 'root:x:0:\n' };
    for (let i = 0; i < 30; i++) files[`sub/d${i % 3}/f${i}.txt`] = `file ${i}\n`.repeat(i + 1);
    const ctx = await newContext(files);
    const root = await newRoot();
    const fresh = await newRoot();
    t.after(() => cleanup(ctx, root, fresh));

    await buildOnce(root, ctx);
    await new Promise((r) => setTimeout(r, 100)); // let the stat cache settle the edit below apart from the rest
    writeFileSync(path.join(ctx, 'sub/d1/f4.txt'), 'edited\n');
    writeFileSync(path.join(ctx, 'sub/d2/new.txt'), 'new\n');
    rmSync(path.join(ctx, 'gone.txt'));
    chmodSync(path.join(ctx, 'mode.sh'), 0o755);
    const second = await buildOnce(root, ctx);
    const full = await buildOnce(fresh, ctx);
    const a = await copyLayer(root, second);
    const b = await copyLayer(fresh, full);
    assert.deepEqual(a.entries, b.entries);
    assert.equal(a.diffId, b.diffId);
    assert.ok(a.entries.some((e) => (e as { path: string }).path.endsWith('sub/d2/new.txt')));
    assert.ok(!a.entries.some((e) => (e as { path: string }).path.endsWith('gone.txt')));
    assert.ok(a.entries.some((e) => /(^|\/)etc\/group$/.test((e as { path: string }).path)));

    const links = (await imageFiles(root, second)).get('links')?.content ?? '';
    const lines = links.trim().split('\n');
    assert.equal(lines.length, 31, links);
    assert.deepEqual(lines.filter((l) => !l.startsWith('1 ')), [], 'files that were never hardlinked must show one link');
    assert.equal(links, (await imageFiles(fresh, full)).get('links')?.content, 'the RUN output must not depend on the cache history');
  });
});
