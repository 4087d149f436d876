import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createLocalStore } from './local-store.js';
import { sha256 } from '../../oci/index.js';

test('local store writes, reads, verifies and detects corruption', async () => {
  const dir = await mkdtemp(path.join(tmpdir(), 'kiln-store-'));
  try {
    const s = await createLocalStore({ root: dir });
    const info = await s.write('hello');
    assert.equal(info.digest, sha256('hello'));
    assert.equal((await s.read(info.digest)).toString(), 'hello');
    const w = await s.writer();
    w.stream.write('hel');
    w.stream.end('lo');
    const i2 = await w.commit({ expected: info.digest });
    assert.equal(i2.digest, info.digest);
    assert.equal(await s.verify(info.digest), true);
    await writeFile(s.path(info.digest), 'jello');
    assert.equal(await s.verify(info.digest), false);
    await assert.rejects(s.read(info.digest), /corrupt/);
    const w3 = await s.writer();
    w3.stream.end('abc');
    await assert.rejects(w3.commit({ expected: info.digest }), /mismatch/);
    const all = [];
    for await (const b of s.list()) all.push(b.digest);
    assert.deepEqual(all, [info.digest]);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
