// Sparse files (issue 14, item 5): a file with holes in the context is copied, archived and unpacked with its holes
// kept, in bounded memory. Real builds, real kiln; the 10 GiB run is bench/sparse.sh.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { build, cleanup, kiln, kilnBin, newContext, newRoot, readImage, requireIntegration } from '../helpers/kiln.js';
import { listLayer } from '../../src/layer/index.js';

const GIB = 1024 ** 3;
const MIB = 1024 * 1024;

/** Run kiln under GNU time: exit code, stderr and the peak resident memory of the kiln process in bytes. */
function kilnWithPeak(args: string[]): Promise<{ code: number; stderr: string; peak: number }> {
  return new Promise((resolve) => {
    const p = spawn('/usr/bin/time', ['-f', 'KILN-MAXRSS-KB %M', kilnBin, ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    p.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    p.on('close', (code) => {
      const m = /KILN-MAXRSS-KB (\d+)/.exec(stderr);
      resolve({ code: code ?? -1, stderr, peak: m ? Number(m[1]) * 1024 : Number.NaN });
    });
  });
}

describe('sparse files in a build', { concurrency: false }, () => {
  let root = '';
  let ctx = '';
  before(async () => {
    root = await newRoot();
    ctx = await newContext({
      Dockerfile: [
        'FROM busybox',
        'COPY disk.img /data/disk.img',
        // a RUN that reads the copy and writes a sparse file of its own
        "RUN stat -c '%s %b %B' /data/disk.img > /stat && dd if=/data/disk.img bs=1 skip=1073741824 count=5 2>/dev/null > /mid && truncate -s 1G /made && echo made | dd of=/made bs=1 seek=1000000 conv=notrunc 2>/dev/null",
        '',
      ].join('\n'),
    });
    const img = path.join(ctx, 'disk.img');
    fs.writeFileSync(img, 'first');
    fs.truncateSync(img, 2 * GIB);
    const fd = fs.openSync(img, 'r+');
    fs.writeSync(fd, Buffer.from('hello'), 0, 5, GIB);
    fs.writeSync(fd, Buffer.from('last!'), 0, 5, 2 * GIB - 5);
    fs.closeSync(fd);
  });
  after(async () => cleanup(root, ctx));

  test('a 2 GiB sparse file: right bytes and size in the image, holes kept, small layers, bounded memory', { timeout: 300_000 }, async (t) => {
    if (!requireIntegration(t)) return;
    const meta = path.join(path.dirname(ctx), `${path.basename(ctx)}-sparse-meta.json`);
    t.after(() => fs.rmSync(meta, { force: true }));
    const r = await kilnWithPeak(['build', '--root', root, '--progress=plain', '-t', 'sparse:1', '--metadata-file', meta, ctx]);
    assert.equal(r.code, 0, r.stderr);
    assert.ok(r.peak < 512 * MIB, `kiln peaked at ${Math.round(r.peak / MIB)} MiB for a 2 GiB file`);
    const digest = (JSON.parse(fs.readFileSync(meta, 'utf8')) as Record<string, string>)['containerimage.digest'];

    // the layers: tiny, and the file is a sparse entry of the real size
    const { manifest } = await readImage(root, digest);
    const [copyLayer, runLayer] = manifest.layers.slice(-2);
    assert.ok(copyLayer.size < 64 * 1024, `COPY layer is ${copyLayer.size} bytes`);
    assert.ok(runLayer.size < 64 * 1024, `RUN layer is ${runLayer.size} bytes`);
    const blob = (d: string): string => path.join(root, 'content', 'blobs', 'sha256', d.slice(7));
    const copied = (await listLayer({ source: blob(copyLayer.digest) })).find((e) => e.path === 'data/disk.img');
    assert.equal(copied?.size, 2 * GIB);
    assert.deepEqual(copied?.sparse, [[0, 4096], [GIB, 4096], [2 * GIB - 4096, 4096]]);
    const made = (await listLayer({ source: blob(runLayer.digest) })).find((e) => e.path === 'made');
    assert.equal(made?.size, GIB);
    assert.ok(made?.sparse !== undefined, 'the file the RUN made is sparse in its layer');

    // inside the build the copy had the size and the bytes, and few blocks (holes kept in the snapshot)
    const stat = await kiln(['run', '--root', root, '--rm', 'sparse:1', 'sh', '-c', 'cat /stat; cat /mid; echo; tail -c 5 /data/disk.img; echo; head -c 5 /data/disk.img; echo; dd if=/made bs=1 skip=1000000 count=4 2>/dev/null']);
    assert.equal(stat.code, 0, stat.stderr);
    const [sizes, mid, last, first, madeBytes] = stat.stdout.split('\n');
    const [size, blocks, blockSize] = sizes.split(' ').map(Number);
    assert.equal(size, 2 * GIB);
    assert.ok(blocks * blockSize < 4 * MIB, `the copy in the snapshot uses ${blocks} blocks of ${blockSize}`);
    assert.deepEqual([mid, last, first, madeBytes], ['hello', 'last!', 'first', 'made']);

    // unchanged: cached; one byte changed: the COPY misses
    const again = await build(root, ctx);
    assert.equal(again.code, 0, again.stderr);
    assert.ok(again.meta['kiln.steps'].every((s) => s.cached), 'the unchanged rebuild is fully cached');
    const fd = fs.openSync(path.join(ctx, 'disk.img'), 'r+');
    fs.writeSync(fd, Buffer.from('J'), 0, 1, GIB);
    fs.closeSync(fd);
    const edited = await build(root, ctx);
    assert.equal(edited.code, 0, edited.stderr);
    assert.equal(edited.meta['kiln.steps'].find((s) => s.name.includes('COPY'))?.cached, false, 'an edit inside the file misses');
  });
});
