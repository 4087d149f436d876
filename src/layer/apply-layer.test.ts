import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { describe, test, type TestContext } from 'node:test';
import zlib from 'node:zlib';
import { applyLayer, listLayer } from './index.js';
import { END_OF_ARCHIVE, encodeHeader, padding, type TarHeader } from './tar-format.js';

function tmp(t: TestContext, name: string): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `kiln-${name}-`));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

type Item = Partial<TarHeader> & { path: string; data?: string | Buffer };

/** Build a tar by hand (our encoder writes whatever path it is given, which is what these tests need). */
function tarOf(items: Item[]): Buffer {
  const parts: Buffer[] = [];
  for (const it of items) {
    const data = typeof it.data === 'string' ? Buffer.from(it.data) : it.data ?? Buffer.alloc(0);
    const type = it.type ?? (it.path.endsWith('/') ? 'directory' : 'file');
    const h: TarHeader = {
      mode: type === 'directory' ? 0o755 : 0o644, uid: 0, gid: 0, mtime: 1_600_000_000, ...it, type, size: data.length,
    };
    parts.push(encodeHeader(h), data, padding(data.length));
  }
  parts.push(END_OF_ARCHIVE);
  return Buffer.concat(parts);
}

async function apply(dest: string, items: Item[] | Buffer, mode: 'overlay' | 'merge' = 'merge'): Promise<number> {
  const buf = Buffer.isBuffer(items) ? items : tarOf(items);
  return (await applyLayer({ source: Readable.from([buf]), dest, mode })).entries;
}

function tree(root: string): string[] {
  return (fs.readdirSync(root, { recursive: true }) as string[]).map((p) => p.split(path.sep).join('/')).sort();
}

describe('applyLayer refuses unsafe archives', () => {
  const cases: Array<{ name: string; items: Item[]; entry: string }> = [
    { name: "a '..' component", items: [{ path: '../escape' }], entry: '../escape' },
    { name: "a '..' in the middle", items: [{ path: 'a/../../escape' }], entry: 'a/../../escape' },
    { name: 'an absolute path', items: [{ path: '/etc/kiln-escape' }], entry: '/etc/kiln-escape' },
    {
      name: 'a write through an absolute symlink',
      items: [{ path: 'etc', type: 'symlink', linkname: '/tmp' }, { path: 'etc/kiln-escape' }],
      entry: 'etc/kiln-escape',
    },
    {
      name: 'a write through a relative symlink that climbs out',
      items: [{ path: 'a/', type: 'directory' }, { path: 'a/up', type: 'symlink', linkname: '../../..' }, { path: 'a/up/kiln-escape' }],
      entry: 'a/up/kiln-escape',
    },
    {
      name: 'a symlink chain that ends outside',
      items: [{ path: 'one', type: 'symlink', linkname: 'two' }, { path: 'two', type: 'symlink', linkname: '..' }, { path: 'one/kiln-escape' }],
      entry: 'one/kiln-escape',
    },
    { name: 'a hardlink to an absolute path', items: [{ path: 'passwd', type: 'link', linkname: '/etc/passwd' }], entry: 'passwd' },
    { name: "a hardlink with '..'", items: [{ path: 'x', type: 'link', linkname: '../outside' }], entry: 'x' },
    {
      name: 'a hardlink through a symlink parent',
      items: [{ path: 'e', type: 'symlink', linkname: '/etc' }, { path: 'p', type: 'link', linkname: 'e/passwd' }],
      entry: 'p',
    },
    { name: 'the root replaced by a symlink', items: [{ path: './', type: 'symlink', linkname: '/' }], entry: './' },
  ];
  for (const c of cases) {
    test(c.name, async (t) => {
      const dir = tmp(t, 'unsafe');
      const dest = path.join(dir, 'dest');
      await assert.rejects(apply(dest, c.items), (err: Error & { code?: string }) => {
        assert.equal(err.code, 'ERR_KILN_ARCHIVE_UNSAFE');
        assert.ok(err.message.includes(JSON.stringify(c.entry)), `message names the entry: ${err.message}`);
        return true;
      });
      assert.equal(fs.existsSync(path.join(dir, 'escape')), false);
      assert.equal(fs.existsSync('/tmp/kiln-escape'), false);
      assert.equal(fs.existsSync(path.join(dest, 'passwd')), false);
    });
  }

  test('a symlink parent that stays inside dest is followed (usrmerge layout)', async (t) => {
    const dest = path.join(tmp(t, 'inscope'), 'dest');
    await apply(dest, [
      { path: 'usr/', type: 'directory' },
      { path: 'usr/lib/', type: 'directory' },
      { path: 'lib', type: 'symlink', linkname: 'usr/lib' },
      { path: 'lib/libkiln.so', data: 'elf' },
    ]);
    assert.equal(fs.readFileSync(path.join(dest, 'usr/lib/libkiln.so'), 'utf8'), 'elf');
    assert.ok(fs.lstatSync(path.join(dest, 'lib')).isSymbolicLink());
  });
});

describe('applyLayer merge mode', () => {
  test('whiteouts delete and opaque markers empty folders of older layers only', async (t) => {
    const dest = path.join(tmp(t, 'merge'), 'dest');
    await apply(dest, [
      { path: 'a/' }, { path: 'a/f', data: 'f' }, { path: 'a/g', data: 'g' },
      { path: 'b/' }, { path: 'b/old', data: 'old' }, { path: 'b/sub/' }, { path: 'b/sub/deep', data: 'deep' },
      { path: 'c', data: 'c' }, { path: 'd/' }, { path: 'd/x', data: 'x' },
    ]);
    const n = await apply(dest, [
      { path: '.wh.c' }, { path: 'a/.wh.f' },
      { path: 'b/' }, { path: 'b/.wh..wh..opq' }, { path: 'b/new', data: 'new' },
      { path: '.wh.d' }, { path: 'nothere/.wh.x' },
    ]);
    assert.equal(n, 7);
    assert.deepEqual(tree(dest), ['a', 'a/g', 'b', 'b/new']);
  });

  test('an opaque marker after the layer\'s own entries keeps them', async (t) => {
    const dest = path.join(tmp(t, 'merge-opq'), 'dest');
    await apply(dest, [{ path: 'b/' }, { path: 'b/old', data: 'o' }, { path: 'b/keep/' }, { path: 'b/keep/old', data: 'o' }]);
    await apply(dest, [{ path: 'b/' }, { path: 'b/-first', data: '1' }, { path: 'b/keep/' }, { path: 'b/keep/new', data: 'n' }, { path: 'b/.wh..wh..opq' }]);
    assert.deepEqual(tree(dest), ['b', 'b/-first', 'b/keep', 'b/keep/new']);
  });

  test('later layers replace files by folders and folders by files, and overwrite files', async (t) => {
    const dest = path.join(tmp(t, 'replace'), 'dest');
    await apply(dest, [{ path: 'x', data: 'file' }, { path: 'y/' }, { path: 'y/inner', data: 'i' }, { path: 'z', data: 'one' }]);
    await apply(dest, [{ path: 'x/' }, { path: 'x/now-dir', data: 'd' }, { path: 'y', data: 'now file' }, { path: 'z', data: 'two', mode: 0o600 }]);
    assert.deepEqual(tree(dest), ['x', 'x/now-dir', 'y', 'z']);
    assert.equal(fs.readFileSync(path.join(dest, 'y'), 'utf8'), 'now file');
    assert.equal(fs.readFileSync(path.join(dest, 'z'), 'utf8'), 'two');
    assert.equal(fs.statSync(path.join(dest, 'z')).mode & 0o7777, 0o600);
  });

  test('a file over an existing symlink replaces the link and does not write through it', async (t) => {
    const dir = tmp(t, 'over-link');
    const dest = path.join(dir, 'dest');
    const outside = path.join(dir, 'outside');
    fs.writeFileSync(outside, 'untouched');
    await apply(dest, [{ path: 'l', type: 'symlink', linkname: outside }]);
    await apply(dest, [{ path: 'l', data: 'new' }]);
    assert.equal(fs.readFileSync(outside, 'utf8'), 'untouched');
    assert.equal(fs.readFileSync(path.join(dest, 'l'), 'utf8'), 'new');
  });

  test('keeps modes, mtimes, symlinks and hardlinks; folder mtimes survive their children', async (t) => {
    const dest = path.join(tmp(t, 'meta'), 'dest');
    await apply(dest, [
      { path: 'bin/', mode: 0o755, mtime: 1_000_000_000 },
      { path: 'bin/su', data: 'su', mode: 0o4755, mtime: 1_100_000_000 },
      { path: 'bin/su2', type: 'link', linkname: 'bin/su' },
      { path: 'bin/sh', type: 'symlink', linkname: 'busybox', mtime: 1_200_000_000 },
      { path: 'tmp/', mode: 0o1777 },
    ]);
    const su = fs.statSync(path.join(dest, 'bin/su'));
    assert.equal(su.mode & 0o7777, 0o4755);
    assert.equal(su.mtimeMs / 1000, 1_100_000_000);
    assert.equal(su.ino, fs.statSync(path.join(dest, 'bin/su2')).ino);
    assert.equal(fs.readlinkSync(path.join(dest, 'bin/sh')), 'busybox');
    assert.equal(fs.lstatSync(path.join(dest, 'bin/sh')).mtimeMs / 1000, 1_200_000_000);
    assert.equal(fs.statSync(path.join(dest, 'bin')).mtimeMs / 1000, 1_000_000_000);
    assert.equal(fs.statSync(path.join(dest, 'tmp')).mode & 0o7777, 0o1777);
  });
});

describe('applyLayer and listLayer input formats', () => {
  const items: Item[] = [{ path: 'hello/' }, { path: 'hello/world', data: 'hi there' }];

  test('plain, gzip and zstd layers (from a path or a stream) unpack the same', async (t) => {
    const dir = tmp(t, 'formats');
    const raw = tarOf(items);
    fs.writeFileSync(path.join(dir, 'l.tar'), raw);
    fs.writeFileSync(path.join(dir, 'l.tar.gz'), zlib.gzipSync(raw));
    execFileSync('zstd', ['-q', '-f', path.join(dir, 'l.tar'), '-o', path.join(dir, 'l.tar.zst')]);
    for (const name of ['l.tar', 'l.tar.gz', 'l.tar.zst']) {
      for (const asStream of [false, true]) {
        const file = path.join(dir, name);
        const dest = path.join(dir, `out-${name}-${asStream}`);
        const source = asStream ? fs.createReadStream(file, { highWaterMark: 3 }) : file;
        const res = await applyLayer({ source, dest, mode: 'merge' });
        assert.equal(res.entries, 2, name);
        assert.equal(fs.readFileSync(path.join(dest, 'hello/world'), 'utf8'), 'hi there', name);
        const listed = await listLayer({ source: file, withContent: true });
        assert.deepEqual(listed.map((e) => [e.path, e.content?.toString()]), [['hello/', undefined], ['hello/world', 'hi there']]);
      }
    }
  });

  test('garbage, a truncated gzip and a missing file are clear errors', async (t) => {
    const dir = tmp(t, 'bad');
    const gz = zlib.gzipSync(tarOf(items));
    await assert.rejects(listLayer({ source: Readable.from([Buffer.alloc(2048, 0x41)]) }), { code: 'ERR_KILN_ARCHIVE_INVALID' });
    await assert.rejects(listLayer({ source: Readable.from([gz.subarray(0, gz.length - 30)]) }), { code: 'ERR_KILN_ARCHIVE_INVALID' });
    await assert.rejects(applyLayer({ source: path.join(dir, 'nope.tar'), dest: path.join(dir, 'd'), mode: 'merge' }), { kind: 'not-found' });
  });
});

describe('hostile layers leave everything outside dest alone', () => {
  const T = 1_500_000_000;
  /** A host folder an attacker aims at: a subfolder and a file with known times and no xattrs. */
  function victim(dir: string): string {
    const v = path.join(dir, 'victim');
    fs.mkdirSync(path.join(v, 'sub'), { recursive: true });
    fs.writeFileSync(path.join(v, 'f'), 'host');
    for (const p of [path.join(v, 'sub'), path.join(v, 'f'), v]) fs.utimesSync(p, T, T);
    return v;
  }
  function untouched(v: string): void {
    assert.deepEqual(tree(v), ['f', 'sub'], 'nothing created or removed in the host folder');
    for (const p of [v, path.join(v, 'sub'), path.join(v, 'f')]) assert.equal(fs.statSync(p).mtimeMs, T * 1000, `${p} keeps its time`);
    assert.equal(fs.readFileSync(path.join(v, 'f'), 'utf8'), 'host');
    const attrs = execFileSync('getfattr', ['-d', '-m', '-', path.join(v, 'f'), path.join(v, 'sub')], { encoding: 'utf8' });
    assert.doesNotMatch(attrs, /kiln/, 'no xattr set on the host');
  }

  for (const mode of ['merge', 'overlay'] as const) {
    test(`${mode}: a folder replaced by a symlink to the host after its entries: times, xattrs, nodes, links and whiteouts stay inside`, async (t) => {
      const dir = tmp(t, `hostile-${mode}`);
      const v = victim(dir);
      const dest = path.join(dir, 'dest');
      const xattr = { xattrs: [['user.kiln', Buffer.from('pwned')]] as Array<readonly [string, Buffer]> };
      await apply(
        dest,
        [
          { path: 'd/', type: 'directory', mtime: 1 },
          { path: 'd/sub/', type: 'directory', mtime: 1, ...xattr },
          { path: 'd/f', data: 'layer', mtime: 1, ...xattr },
          { path: 'd/fifo', type: 'fifo' },
          { path: 'd/node-link', type: 'link', linkname: 'd/fifo' },
          { path: 'd/.wh.gone', type: 'file' },
          // now the folder goes, and a symlink to the host folder takes its name
          { path: 'd', type: 'symlink', linkname: v },
        ],
        mode,
      );
      untouched(v);
      assert.equal(fs.readlinkSync(path.join(dest, 'd')), v, 'the symlink itself is kept as data');
    });
  }

  test('merge: an absolute symlink left by an earlier layer is not written through', async (t) => {
    const dir = tmp(t, 'hostile-earlier');
    const v = victim(dir);
    const dest = path.join(dir, 'dest');
    await apply(dest, [{ path: 'etc', type: 'symlink', linkname: v }]);
    for (const items of [
      [{ path: 'etc/f', data: 'evil' }],
      [{ path: 'etc/sub/', type: 'directory' as const, mtime: 1 }],
      [{ path: 'etc/.wh.f' }],
      [{ path: 'etc/new', type: 'symlink' as const, linkname: '/' }],
      [{ path: 'x', type: 'link' as const, linkname: 'etc/f' }],
    ]) {
      await assert.rejects(apply(dest, items), (err: Error & { code?: string }) => err.code === 'ERR_KILN_ARCHIVE_UNSAFE', JSON.stringify(items));
    }
    untouched(v);
  });

  test("a relative symlink with '..' that climbs out, reached through another link, is refused", async (t) => {
    const dir = tmp(t, 'hostile-dotdot');
    const v = victim(dir);
    const dest = path.join(dir, 'dest');
    await assert.rejects(
      apply(dest, [
        { path: 'a/', type: 'directory' },
        { path: 'a/b', type: 'symlink', linkname: '../c' },
        { path: 'c', type: 'symlink', linkname: `../${path.basename(v)}` },
        { path: 'a/b/f', data: 'evil' },
      ]),
      (err: Error & { code?: string }) => err.code === 'ERR_KILN_ARCHIVE_UNSAFE',
    );
    untouched(v);
  });
});
