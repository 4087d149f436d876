import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { copySparseFile, dataExtents, hasHoles } from './index.js';

test('dataExtents finds the data of a sparse file without reading its holes; copySparseFile keeps them', (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kiln-sparse-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const f = path.join(dir, 'f');
  const size = 8 * 1024 ** 3;
  fs.closeSync(fs.openSync(f, 'w'));
  fs.truncateSync(f, size);
  const fd = fs.openSync(f, 'r+');
  fs.writeSync(fd, Buffer.from('abc'), 0, 3, 3 * 1024 ** 3);
  fs.closeSync(fd);
  assert.equal(hasHoles(fs.statSync(f)), true);
  const started = Date.now();
  const ext = dataExtents(f, size);
  assert.ok(Date.now() - started < 5000, 'no 8 GiB read');
  assert.equal(ext.length, 1);
  const [o, l] = ext[0]!;
  assert.ok(o <= 3 * 1024 ** 3 && o + l >= 3 * 1024 ** 3 + 3 && l <= 1024 * 1024, `extent ${o}+${l} holds the data`);

  const plain = path.join(dir, 'plain');
  fs.writeFileSync(plain, Buffer.alloc(200_000, 1));
  assert.equal(hasHoles(fs.statSync(plain)), false);
  assert.deepEqual(dataExtents(plain, 200_000), [[0, 200_000]]);

  const copy = path.join(dir, 'copy');
  copySparseFile(f, copy, 0o640);
  const st = fs.statSync(copy);
  assert.equal(st.size, size);
  assert.equal(st.mode & 0o777, 0o640);
  assert.ok(st.blocks * 512 < 1024 * 1024, `the copy keeps its holes (${st.blocks} blocks)`);
  const b = Buffer.alloc(5);
  const cfd = fs.openSync(copy, 'r');
  fs.readSync(cfd, b, 0, 5, 3 * 1024 ** 3 - 1);
  fs.closeSync(cfd);
  assert.deepEqual(b, Buffer.from('\0abc\0'));
  assert.throws(() => copySparseFile(path.join(dir, 'missing'), path.join(dir, 'x'), 0o644), /copying .*missing failed/);
});
