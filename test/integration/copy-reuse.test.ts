/**
 * Incremental COPY (src/ops/copy-reuse.ts): a COPY that reruns after a small context edit links unchanged files
 * from its previous result; the layer must be the one a full copy makes.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, promises as fsp, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { listLayer } from '../../src/layer/index.js';
import { cleanup, kiln, newContext, newRoot, readImage, requireIntegration } from '../helpers/kiln.js';

// into /etc: `group` replaces the base image's file (the copy leaves a whiteout there first)
const DOCKERFILE = 'FROM busybox:latest\nCOPY --chown=7:8 . /etc/\nRUN ls /etc/sub >/dev/null\n';

async function buildTraced(root: string, ctx: string): Promise<{ stderr: string; digest: string }> {
  const meta = path.join(path.dirname(ctx), `${path.basename(ctx)}-meta.json`);
  const r = await kiln(['build', '--root', root, '--progress=plain', '--metadata-file', meta, ctx], { env: { ...process.env, KILN_TRACE: '1' } });
  assert.equal(r.code, 0, r.stderr);
  const digest = (JSON.parse(await fsp.readFile(meta, 'utf8')) as Record<string, string>)['containerimage.digest']!;
  await fsp.rm(meta, { force: true });
  return { stderr: r.stderr, digest };
}

/** The COPY layer (second of the image): its diffId and its listing with contents. */
async function copyLayer(root: string, digest: string): Promise<{ diffId: string; entries: unknown[] }> {
  const { manifest, config } = await readImage(root, digest);
  const blob = path.join(root, 'content', 'blobs', 'sha256', manifest.layers[1]!.digest.slice(7));
  const entries = await listLayer({ source: blob, withContent: true });
  return { diffId: config.rootfs.diff_ids[1]!, entries: entries.map((e) => ({ ...e, content: e.content?.toString('hex') })) };
}

describe('incremental COPY', () => {
  test('an edited context gives the same layer as a full copy', async (t) => {
    if (!requireIntegration(t)) return;
    const files: Record<string, string> = { Dockerfile: DOCKERFILE, 'top.txt': 'top\n', 'gone.txt': 'bye\n', 'mode.sh': 'echo\n', group: 'root:x:0:\n' };
    for (let i = 0; i < 30; i++) files[`sub/d${i % 3}/f${i}.txt`] = `file ${i}\n`.repeat(i + 1);
    const ctx = await newContext(files);
    const root = await newRoot();
    const fresh = await newRoot();
    t.after(() => cleanup(ctx, root, fresh));

    await buildTraced(root, ctx);
    await new Promise((r) => setTimeout(r, 100)); // let the stat cache settle the edit below apart from the rest
    writeFileSync(path.join(ctx, 'sub/d1/f4.txt'), 'edited\n');
    writeFileSync(path.join(ctx, 'sub/d2/new.txt'), 'new\n');
    rmSync(path.join(ctx, 'gone.txt'));
    chmodSync(path.join(ctx, 'mode.sh'), 0o755);
    const second = await buildTraced(root, ctx);
    const reused = /copy \.: \d+ ms \((\d+) files reused\)/.exec(second.stderr);
    assert.ok(reused, `no incremental copy in:\n${second.stderr}`);
    assert.ok(Number(reused[1]) >= 25, `only ${reused[1]} files reused`);

    const full = await buildTraced(fresh, ctx);
    assert.match(full.stderr, /\(0 files reused\)/);
    const a = await copyLayer(root, second.digest);
    const b = await copyLayer(fresh, full.digest);
    assert.deepEqual(a.entries, b.entries);
    assert.equal(a.diffId, b.diffId);
    assert.ok(a.entries.some((e) => (e as { path: string }).path.endsWith('sub/d2/new.txt')));
    assert.ok(!a.entries.some((e) => (e as { path: string }).path.endsWith('gone.txt')));
    assert.ok(a.entries.some((e) => /(^|\/)etc\/group$/.test((e as { path: string }).path)));
  });
});
