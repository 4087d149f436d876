import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, test, type TestContext } from 'node:test';
import zlib from 'node:zlib';
import { createLocalStore } from '../store/index.js';
import { listLayer, writeLayer } from './index.js';

function tmp(t: TestContext, name: string): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `kiln-${name}-`));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** ~3,000 small files in 30 folders plus two 3 MiB files of varied bytes: several gzip members. */
function makeTree(root: string): void {
  for (let d = 0; d < 30; d++) {
    fs.mkdirSync(path.join(root, `d${d}`), { recursive: true });
    for (let f = 0; f < 100; f++) fs.writeFileSync(path.join(root, `d${d}`, `f${f}.txt`), `${d}/${f} `.repeat(20 + ((d * f) % 90)));
  }
  for (const name of ['big1', 'big2']) {
    const buf = Buffer.alloc(3 * 1024 * 1024);
    for (let i = 0; i < buf.length; i += 4) buf.writeUInt32LE(Math.imul(i + name.length, 2654435761) >>> 0, i);
    fs.writeFileSync(path.join(root, name), buf);
  }
  const all = [root, ...(fs.readdirSync(root, { recursive: true }) as string[]).map((e) => path.join(root, e))];
  for (const p of all) fs.utimesSync(p, 1_600_000_000, 1_600_000_000);
}

describe('writeLayer with a gzip member cache', () => {
  test('same tar and entries as one gzip stream; unchanged members are reused after an edit', async (t) => {
    const dir = tmp(t, 'chunks-tree');
    makeTree(dir);
    const store = await createLocalStore({ root: tmp(t, 'chunks-store') });
    const cache = tmp(t, 'chunks-cache');

    const plain = await writeLayer({ dir, ingester: store, overlay: false });
    const chunked = await writeLayer({ dir, ingester: store, overlay: false, chunkCache: { dir: cache } });
    assert.equal(chunked.diffId, plain.diffId);
    assert.equal(chunked.contentId, plain.contentId);
    const blob = fs.readFileSync(store.path(chunked.digest));
    const tar = zlib.gunzipSync(blob);
    assert.equal(`sha256:${createHash('sha256').update(tar).digest('hex')}`, chunked.diffId);
    assert.deepEqual(await listLayer({ source: store.path(chunked.digest) }), await listLayer({ source: store.path(plain.digest) }));
    // GNU tar (through gzip) reads the concatenated members too
    const listed = execFileSync('tar', ['-tzf', store.path(chunked.digest)], { encoding: 'utf8', maxBuffer: 1 << 26 }).trim().split('\n');
    assert.equal(listed.length, chunked.entries);
    const members = fs.readdirSync(cache).filter((n) => n.endsWith('.gz'));
    assert.ok(members.length >= 4, `${members.length} members`);

    const again = await writeLayer({ dir, ingester: store, overlay: false, chunkCache: { dir: cache } });
    assert.equal(again.digest, chunked.digest);
    assert.equal(fs.readdirSync(cache).length, members.length);

    fs.appendFileSync(path.join(dir, 'd15/f50.txt'), 'changed\n');
    fs.utimesSync(path.join(dir, 'd15/f50.txt'), 1_600_000_000, 1_600_000_000);
    const edited = await writeLayer({ dir, ingester: store, overlay: false, chunkCache: { dir: cache } });
    const fresh = await writeLayer({ dir, ingester: store, overlay: false });
    assert.equal(edited.diffId, fresh.diffId);
    const added = fs.readdirSync(cache).length - members.length;
    assert.ok(added >= 1 && added <= 2, `${added} members compressed again`);
  });

  test('the cache stays under its bound', async (t) => {
    const dir = tmp(t, 'chunks-tree');
    makeTree(dir);
    const store = await createLocalStore({ root: tmp(t, 'chunks-store') });
    const cache = tmp(t, 'chunks-cache');
    const r = await writeLayer({ dir, ingester: store, overlay: false, chunkCache: { dir: cache, maxBytes: 1024 * 1024 } });
    const total = fs.readdirSync(cache).reduce((a, n) => a + fs.statSync(path.join(cache, n)).size, 0);
    assert.ok(total <= 1024 * 1024, `${total} bytes cached`);
    assert.ok(r.size > 1024 * 1024);
  });
});
