import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import { unpackArchive } from './archive.js';

const base = fs.mkdtempSync(path.join(os.tmpdir(), 'kiln-archive-limits-'));
after(() => fs.rmSync(base, { recursive: true, force: true }));

/** A gzip tar of `files` files of `size` bytes each, made with the system tar. */
function archiveOf(name: string, files: number, size: number): string {
  const src = path.join(base, `${name}-src`);
  fs.mkdirSync(src);
  for (let i = 0; i < files; i++) fs.writeFileSync(path.join(src, `f${i}`), Buffer.alloc(size, 0x61));
  const file = path.join(base, `${name}.tar.gz`);
  execFileSync('tar', ['-czf', file, '-C', src, '.']);
  return file;
}

function dest(name: string): string {
  const d = path.join(base, `${name}-dest`);
  fs.mkdirSync(d);
  return d;
}

test('ADD extraction stops at the entry limit with a clear error', async () => {
  const file = archiveOf('many', 20, 1);
  await assert.rejects(unpackArchive({ file, destDir: dest('many'), maxEntries: 10 }), (err: Error & { code?: string }) => {
    assert.equal(err.code, 'ERR_KILN_LIMIT_EXCEEDED');
    assert.match(err.message, /many\.tar\.gz: the archive has more than 10 entries/);
    return true;
  });
  const ok = await unpackArchive({ file, destDir: dest('many-ok'), maxEntries: 100 });
  assert.equal(ok.files, 20);
});

test('ADD extraction stops at the content-size limit (a gzip bomb) with a clear error', async () => {
  const file = archiveOf('big', 2, 1024 * 1024); // 2 MiB of content, a few KiB compressed
  assert.ok(fs.statSync(file).size < 64 * 1024);
  await assert.rejects(unpackArchive({ file, destDir: dest('big'), maxBytes: 1024 * 1024 + 10 }), (err: Error & { code?: string }) => {
    assert.equal(err.code, 'ERR_KILN_LIMIT_EXCEEDED');
    assert.match(err.message, /big\.tar\.gz: the archive has more than .*bytes/);
    return true;
  });
  const ok = await unpackArchive({ file, destDir: dest('big-ok'), maxBytes: 4 * 1024 * 1024 });
  assert.equal(ok.bytes, 2 * 1024 * 1024);
});
