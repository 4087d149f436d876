import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { resolveSources } from './index.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'kiln-sources-'));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));
let n = 0;

function ctx(files: Record<string, string>): string {
  const dir = path.join(tmp, `c${n++}`);
  for (const [name, content] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(dir, name)), { recursive: true });
    fs.writeFileSync(path.join(dir, name), content);
  }
  return dir;
}

const digest = async (root: string, sources: string[], extra: Record<string, unknown> = {}): Promise<string> =>
  (await resolveSources({ root, sources, ...extra })).digest;

describe('resolveSources: the key covers what reaches the image', () => {
  test('a followed source link keys on its target content', async () => {
    const dir = ctx({ 'real.txt': 'one' });
    fs.symlinkSync('real.txt', path.join(dir, 'link'));
    const a = await resolveSources({ root: dir, sources: ['link'] });
    assert.equal(a.units[0]!.entries[0]!.type, 'file');
    fs.writeFileSync(path.join(dir, 'real.txt'), 'two');
    assert.notEqual(await digest(dir, ['link']), a.digest);
  });

  test('a link below a copied directory stays a link: its target text is keyed, not the target file', async () => {
    const dir = ctx({ 'd/real.txt': 'one', 'other.txt': 'x' });
    fs.symlinkSync('../other.txt', path.join(dir, 'd/l'));
    const a = await resolveSources({ root: dir, sources: ['d'] });
    assert.deepEqual(a.units[0]!.entries.map((e) => [e.rel, e.type, e.linkTarget ?? '']), [['', 'dir', ''], ['l', 'symlink', '../other.txt'], ['real.txt', 'file', '']]);
    fs.writeFileSync(path.join(dir, 'other.txt'), 'y');
    assert.equal(await digest(dir, ['d']), a.digest);
    fs.rmSync(path.join(dir, 'd/l'));
    fs.symlinkSync('real.txt', path.join(dir, 'd/l'));
    assert.notEqual(await digest(dir, ['d']), a.digest);
  });

  test('hardlink structure, xattrs, modes are keyed; times and inode numbers are not', async () => {
    const dir = ctx({ 'd/a': 'same', 'd/b': 'same' });
    const base = await digest(dir, ['d']);
    fs.rmSync(path.join(dir, 'd/b'));
    fs.linkSync(path.join(dir, 'd/a'), path.join(dir, 'd/b'));
    const linked = await resolveSources({ root: dir, sources: ['d'] });
    assert.equal(linked.units[0]!.entries.find((e) => e.rel === 'b')!.hardlink, 'a');
    assert.notEqual(linked.digest, base);
    // split again: same as the start, although inode numbers differ
    fs.rmSync(path.join(dir, 'd/b'));
    fs.writeFileSync(path.join(dir, 'd/b'), 'same');
    assert.equal(await digest(dir, ['d']), base);
    fs.utimesSync(path.join(dir, 'd/a'), 1000, 1000);
    fs.utimesSync(path.join(dir, 'd'), 1000, 1000);
    assert.equal(await digest(dir, ['d']), base, 'times are not keyed');
    execFileSync('setfattr', ['-n', 'user.k', '-v', 'v1', path.join(dir, 'd/a')]);
    const x1 = await resolveSources({ root: dir, sources: ['d'] });
    assert.deepEqual(x1.units[0]!.entries.find((e) => e.rel === 'a')!.xattrs, { 'user.k': Buffer.from('v1').toString('hex') });
    execFileSync('setfattr', ['-n', 'user.k', '-v', 'v2', path.join(dir, 'd/a')]);
    assert.notEqual(await digest(dir, ['d']), x1.digest);
    fs.chmodSync(path.join(dir, 'd'), 0o700);
    assert.notEqual(await digest(dir, ['d']), x1.digest, 'directory permissions are keyed');
  });

  test('ownership is keyed only when it reaches the image', async () => {
    const dir = ctx({ f: 'x' });
    const a = await digest(dir, ['f']);
    const own = await digest(dir, ['f'], { keepOwnership: true });
    fs.chownSync(path.join(dir, 'f'), 1234, 1234);
    assert.equal(await digest(dir, ['f']), a);
    assert.notEqual(await digest(dir, ['f'], { keepOwnership: true }), own);
  });

  test('.dockerignore and --exclude drop entries from the list and the key', async () => {
    const dir = ctx({ 'a/keep': '1', 'a/drop.log': '2', 'a/sub/x.log': '3' });
    const r = await resolveSources({ root: dir, sources: ['a'], excludes: ['*.log'], isIgnored: (p) => p === 'a/sub' || p.startsWith('a/sub/') });
    assert.deepEqual(r.units[0]!.entries.map((e) => e.rel), ['', 'keep']);
    const before = r.digest;
    fs.writeFileSync(path.join(dir, 'a/drop.log'), 'changed');
    assert.equal((await resolveSources({ root: dir, sources: ['a'], excludes: ['*.log'], isIgnored: (p) => p.startsWith('a/sub') })).digest, before);
  });

  test('sockets are skipped as Docker skips them', async () => {
    const dir = ctx({ 'd/f': 'x' });
    const sock = path.join(dir, 'd/s.sock');
    const server = net.createServer().listen(sock);
    await new Promise((r) => server.once('listening', r));
    try {
      const r = await resolveSources({ root: dir, sources: ['d'] });
      assert.deepEqual(r.units[0]!.entries.map((e) => e.rel), ['', 'f']);
    } finally {
      server.close();
    }
  });

  test('a file name that is not UTF-8 is refused with its name, unless it is ignored', async () => {
    const dir = ctx({ 'd/ok': 'x' });
    const bad = Buffer.concat([Buffer.from(path.join(dir, 'd') + '/caf'), Buffer.from([0xe9])]);
    fs.writeFileSync(bad, 'latin1 name');
    await assert.rejects(resolveSources({ root: dir, sources: ['d'] }), (err: Error & { code?: string }) => {
      assert.equal(err.code, 'ERR_KILN_CONTEXT_NAME');
      assert.match(err.message, /d\/caf\\xe9/);
      return true;
    });
    const r = await resolveSources({ root: dir, sources: ['d'], isIgnored: (p) => p.startsWith('d/caf') });
    assert.deepEqual(r.units[0]!.entries.map((e) => e.rel), ['', 'ok']);
  });
});
