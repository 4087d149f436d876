import assert from 'node:assert/strict';
import { chmodSync, chownSync, lstatSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, unlinkSync, utimesSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, beforeEach, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { checksumSources, createMemoryStatCache, createPatternMatcher, matchSources, type ChecksumOptions } from './index.js';

const tmpRoot = mkdtempSync(path.join(os.tmpdir(), 'kiln-checksum-'));
after(() => rmSync(tmpRoot, { recursive: true, force: true }));

let ctx = '';
function put(rel: string, content: string, mode = 0o644): void {
  const abs = path.join(ctx, rel);
  mkdirSync(path.dirname(abs), { recursive: true });
  writeFileSync(abs, content);
  chmodSync(abs, mode);
}

beforeEach(() => {
  ctx = mkdtempSync(path.join(tmpRoot, 'ctx-'));
  put('app/main.js', 'console.log(1)\n');
  put('app/lib/util.js', 'export const x = 1;\n');
  put('app/README.md', '# app\n');
  put('package.json', '{"name":"x"}\n');
  symlinkSync('main.js', path.join(ctx, 'app/entry.js'));
});

const sum = (extra: Partial<ChecksumOptions> = {}) => checksumSources({ dir: ctx, sources: ['app', 'package.json'], ...extra });

const code = (c: string) => (err: unknown) => (err as { code?: string }).code === c;

describe('checksumSources: what changes the digest', () => {
  test('touch (mtime/atime change) keeps the digest', async () => {
    const before = await sum();
    utimesSync(path.join(ctx, 'app/main.js'), new Date(2001, 1, 1), new Date(2001, 1, 1));
    utimesSync(path.join(ctx, 'app'), new Date(2002, 1, 1), new Date(2002, 1, 1));
    assert.equal((await sum()).digest, before.digest);
  });

  test('rewriting a file with the same bytes (new inode, new ctime) keeps the digest', async () => {
    const before = await sum();
    const p = path.join(ctx, 'app/lib/util.js');
    const ino = lstatSync(p).ino;
    unlinkSync(p);
    put('app/zzz-placeholder', 'keeps the old inode busy');
    put('app/lib/util.js', 'export const x = 1;\n');
    unlinkSync(path.join(ctx, 'app/zzz-placeholder'));
    assert.notEqual(lstatSync(p).ino, ino);
    assert.equal((await sum()).digest, before.digest);
  });

  test('a content change alters it', async () => {
    const before = await sum();
    put('app/lib/util.js', 'export const x = 2;\n');
    const afterChange = await sum();
    assert.notEqual(afterChange.digest, before.digest);
    const rec = (r: typeof before) => r.files.find((f) => f.path === 'app/lib/util.js')?.digest;
    assert.notEqual(rec(afterChange), rec(before), 'the per-file record shows which file changed');
  });

  test('chmod alters it, including setuid/setgid/sticky bits', async () => {
    const a = await sum();
    chmodSync(path.join(ctx, 'app/main.js'), 0o755);
    const b = await sum();
    chmodSync(path.join(ctx, 'app/main.js'), 0o4755);
    const c = await sum();
    chmodSync(path.join(ctx, 'app/lib'), 0o1755);
    const d = await sum();
    assert.equal(new Set([a.digest, b.digest, c.digest, d.digest]).size, 4);
  });

  test('a symlink target change alters it', async () => {
    const before = await sum();
    unlinkSync(path.join(ctx, 'app/entry.js'));
    symlinkSync('lib/util.js', path.join(ctx, 'app/entry.js'));
    assert.notEqual((await sum()).digest, before.digest);
  });

  test('renaming a file alters it (path names are part of it)', async () => {
    const before = await sum();
    const { renameSync } = await import('node:fs');
    renameSync(path.join(ctx, 'app/README.md'), path.join(ctx, 'app/README.txt'));
    assert.notEqual((await sum()).digest, before.digest);
  });

  test('chown alters it only with includeOwnership', { skip: process.getuid?.() !== 0 ? 'chown needs root' : false }, async () => {
    const withOwn = await sum({ includeOwnership: true });
    const without = await sum();
    chownSync(path.join(ctx, 'app/main.js'), 1234, 5678);
    assert.notEqual((await sum({ includeOwnership: true })).digest, withOwn.digest);
    assert.equal((await sum()).digest, without.digest);
    const rec = (await sum({ includeOwnership: true })).files.find((f) => f.path === 'app/main.js');
    assert.deepEqual([rec?.uid, rec?.gid], [1234, 5678]);
  });

  test('a change to an ignored file does not alter it, and the file is not hashed', async () => {
    const ignore = createPatternMatcher(['**/*.md']);
    const before = await sum({ ignore });
    put('app/README.md', 'changed\n');
    const afterChange = await sum({ ignore });
    assert.equal(afterChange.digest, before.digest);
    assert.ok(!afterChange.files.some((f) => f.path.endsWith('.md')));
    assert.notEqual((await sum()).digest, before.digest, 'without the ignore file the change is seen');
  });

  test('a change to a file excluded with COPY --exclude does not alter it', async () => {
    const before = await sum({ excludes: ['lib'] });
    put('app/lib/util.js', 'export const x = 3;\n');
    assert.equal((await sum({ excludes: ['lib'] })).digest, before.digest);
    assert.ok(!before.files.some((f) => f.path.startsWith('app/lib')));
  });
});

describe('checksumSources: stat cache', () => {
  test('a warm stat cache reads no bytes, and a touched file is re-read with the same digest', async () => {
    await sleep(80); // files written in the last 50 ms are not cached (coarse file timestamps)
    const cache = createMemoryStatCache();
    const cold = await sum({ statCache: cache });
    assert.ok(cold.bytesRead > 0);
    assert.equal(cold.filesHashed, 4);
    const warm = await sum({ statCache: cache });
    assert.equal(warm.bytesRead, 0);
    assert.equal(warm.filesHashed, 0);
    assert.equal(warm.digest, cold.digest);
    utimesSync(path.join(ctx, 'package.json'), new Date(2003, 1, 1), new Date(2003, 1, 1));
    const touched = await sum({ statCache: cache });
    assert.equal(touched.filesHashed, 1);
    assert.equal(touched.bytesRead, '{"name":"x"}\n'.length);
    assert.equal(touched.digest, cold.digest);
  });

  test('files changed just before hashing are not cached', async () => {
    const cache = createMemoryStatCache();
    put('package.json', '{"name":"y"}\n');
    await sum({ statCache: cache });
    const again = await sum({ statCache: cache });
    assert.ok(again.filesHashed >= 1, 'the fresh file is read again');
  });
});

describe('sources: wildcards, ignore, errors, symlinks', () => {
  test('wildcards expand per component, sorted, and skip ignored paths', async () => {
    put('app/lib/extra.js', '1');
    const ignore = createPatternMatcher(['app/lib/extra.js']);
    const res = await matchSources({ dir: ctx, sources: ['app/*.js', '*/l?b/*.js', '/package.*'], ignore });
    assert.deepEqual(res, [
      { source: 'app/*.js', paths: ['app/entry.js', 'app/main.js'] },
      { source: '*/l?b/*.js', paths: ['app/lib/util.js'] },
      { source: '/package.*', paths: ['package.json'] },
    ]);
  });

  test('a source with no match throws ERR_KILN_CONTEXT_NOT_FOUND naming it', async () => {
    await assert.rejects(checksumSources({ dir: ctx, sources: ['nope/*.txt'] }), (err: Error & { code?: string }) =>
      err.code === 'ERR_KILN_CONTEXT_NOT_FOUND' && err.message.includes('nope/*.txt'));
    const ignore = createPatternMatcher(['package.json']);
    await assert.rejects(checksumSources({ dir: ctx, sources: ['package.json'], ignore }), code('ERR_KILN_CONTEXT_NOT_FOUND'));
  });

  test('`..` is clamped to the root', async () => {
    const a = await checksumSources({ dir: ctx, sources: ['../../package.json'] });
    assert.deepEqual(a.files.map((f) => f.path), ['package.json']);
  });

  test('an ignored directory with an exception inside is visible with only the re-included file', async () => {
    const ignore = createPatternMatcher(['app', '!app/README.md']);
    const r = await checksumSources({ dir: ctx, sources: ['app'], ignore });
    assert.deepEqual(r.files.map((f) => f.path), ['app', 'app/README.md']);
  });

  test('followSymlinks hashes the target of a source link; a link that points outside is hashed as a link', async () => {
    const followed = await checksumSources({ dir: ctx, sources: ['app/entry.js'], followSymlinks: true });
    assert.equal(followed.files[0].digest, (await checksumSources({ dir: ctx, sources: ['app/main.js'] })).files[0].digest);
    assert.equal(followed.files[0].mode & 0o170000, 0o100000);
    symlinkSync('../../../../etc/passwd', path.join(ctx, 'escape'));
    const r = await checksumSources({ dir: ctx, sources: ['escape'], followSymlinks: true });
    assert.equal(r.files[0].mode & 0o170000, 0o120000);
    assert.equal(r.bytesRead, 0);
  });

  test('a symlinked parent directory leading outside the root throws ERR_KILN_CONTEXT_ESCAPE', async () => {
    symlinkSync('../..', path.join(ctx, 'up'));
    await assert.rejects(checksumSources({ dir: ctx, sources: ['up/etc/hostname'] }), code('ERR_KILN_CONTEXT_ESCAPE'));
  });

  test('an invalid --exclude pattern is a pattern error', async () => {
    await assert.rejects(sum({ excludes: ['['] }), code('ERR_KILN_IGNORE_PATTERN'));
  });
});
