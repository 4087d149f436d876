import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, test, type TestContext } from 'node:test';
import zlib from 'node:zlib';
import { createLocalStore } from '../store/index.js';
import { applyLayer, listLayer, writeLayer } from './index.js';

function tmp(t: TestContext, name: string): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `kiln-${name}-`));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

const T0 = 1_600_000_000;
const LONG = `${'long-directory-name-'.repeat(4)}/${'very-long-file-name-'.repeat(7)}.txt`;

/** A tree with files, folders, a symlink, a hardlink, a setuid file, a long name and a binary user xattr. */
function makeTree(root: string): void {
  fs.mkdirSync(path.join(root, 'etc/app'), { recursive: true });
  fs.mkdirSync(path.join(root, 'usr/bin'), { recursive: true });
  fs.writeFileSync(path.join(root, 'etc/app/config'), 'key=value\n');
  fs.writeFileSync(path.join(root, 'usr/bin/tool'), Buffer.alloc(70_000, 0x41));
  fs.chmodSync(path.join(root, 'usr/bin/tool'), 0o4755);
  fs.linkSync(path.join(root, 'usr/bin/tool'), path.join(root, 'usr/bin/tool-alias'));
  fs.symlinkSync('../etc/app/config', path.join(root, 'usr/config-link'));
  fs.mkdirSync(path.join(root, path.dirname(LONG)), { recursive: true });
  fs.writeFileSync(path.join(root, LONG), 'long');
  fs.writeFileSync(path.join(root, 'big'), Buffer.alloc(3 * 1024 * 1024 + 5, 0x5a));
  fs.writeFileSync(path.join(root, 'empty'), '');
  execFileSync('setfattr', ['-n', 'user.x', '-v', '0xff00fe80', path.join(root, 'etc/app/config')]);
  setTimes(root, T0);
}

function setTimes(root: string, seconds: number): void {
  const all = [root];
  for (const e of fs.readdirSync(root, { recursive: true }) as string[]) all.push(path.join(root, e));
  for (const p of all.reverse()) fs.lutimesSync(p, seconds, seconds);
}

describe('writeLayer', () => {
  test('writes a gzip layer whose entries, metadata and bytes match the tree', async (t) => {
    const dir = tmp(t, 'wl');
    const root = path.join(dir, 'tree');
    makeTree(root);
    const store = await createLocalStore({ root: path.join(dir, 'store') });
    const info = await writeLayer({ dir: root, ingester: store });
    assert.equal(info.mediaType, 'application/vnd.oci.image.layer.v1.tar+gzip');

    const blob = fs.readFileSync(store.path(info.digest));
    assert.equal(info.size, blob.length);
    assert.equal(`sha256:${createHash('sha256').update(blob).digest('hex')}`, info.digest);
    const tar = zlib.gunzipSync(blob);
    assert.equal(info.uncompressedSize, tar.length);
    assert.equal(`sha256:${createHash('sha256').update(tar).digest('hex')}`, info.diffId);

    const entries = await listLayer({ source: store.path(info.digest), withContent: true });
    assert.equal(entries.length, info.entries);
    const paths = entries.map((e) => e.path);
    assert.deepEqual(paths.slice(0, 3), ['big', 'empty', 'etc/']);
    // parents before children, each folder's names in byte order
    for (const e of entries) {
      const parent = e.path.replace(/\/?[^/]+\/?$/, '');
      if (parent) assert.ok(paths.indexOf(`${parent}/`) < paths.indexOf(e.path), `${parent}/ before ${e.path}`);
    }
    const by = new Map(entries.map((e) => [e.path, e]));
    const tool = by.get('usr/bin/tool');
    assert.equal(tool?.type, 'file');
    assert.equal(tool?.mode, 0o4755);
    assert.equal(tool?.content?.length, 70_000);
    assert.deepEqual(
      [by.get('usr/bin/tool-alias')?.type, by.get('usr/bin/tool-alias')?.linkname],
      ['link', 'usr/bin/tool'],
      'the second name of a hardlinked file is a tar hardlink to the first',
    );
    assert.deepEqual([by.get('usr/config-link')?.type, by.get('usr/config-link')?.linkname], ['symlink', '../etc/app/config']);
    assert.equal(by.get(LONG)?.content?.toString(), 'long');
    assert.equal(by.get('big')?.content?.length, 3 * 1024 * 1024 + 5);
    assert.equal(by.get('etc/app/')?.type, 'directory');
    assert.equal(by.get('etc/app/config')?.mtime, T0);
    assert.deepEqual(Buffer.from(by.get('etc/app/config')?.xattrs?.['user.x'] ?? '', 'latin1'), Buffer.from('ff00fe80', 'hex'));

    // GNU tar agrees: extract and compare bytes
    const out = path.join(dir, 'out');
    fs.mkdirSync(out);
    execFileSync('tar', ['-xzf', store.path(info.digest), '-C', out]);
    execFileSync('diff', ['-r', '--no-dereference', root, out]);
    assert.equal(fs.statSync(path.join(out, 'usr/bin/tool')).ino, fs.statSync(path.join(out, 'usr/bin/tool-alias')).ino);
  });

  test('uname and gname are empty in every header', async (t) => {
    const dir = tmp(t, 'wl-names');
    const root = path.join(dir, 'tree');
    makeTree(root);
    const store = await createLocalStore({ root: path.join(dir, 'store') });
    const info = await writeLayer({ dir: root, ingester: store, compression: 'none' });
    const verbose = execFileSync('tar', ['-tvf', store.path(info.digest)], { encoding: 'utf8' });
    for (const line of verbose.trim().split('\n')) assert.match(line, /^\S+ \d+\/\d+ /, line);
  });

  test('compression none stores the tar itself: digest equals diffId', async (t) => {
    const dir = tmp(t, 'wl-none');
    const root = path.join(dir, 'tree');
    makeTree(root);
    const store = await createLocalStore({ root: path.join(dir, 'store') });
    const info = await writeLayer({ dir: root, ingester: store, compression: 'none' });
    assert.equal(info.digest, info.diffId);
    assert.equal(info.size, info.uncompressedSize);
    assert.equal(info.mediaType, 'application/vnd.oci.image.layer.v1.tar');
    const gz = await writeLayer({ dir: root, ingester: store });
    assert.equal(gz.diffId, info.diffId, 'the same tar under both compressions');
  });

  test('is deterministic: same tree, same digest; copies and touches change nothing with sourceDateEpoch', async (t) => {
    const dir = tmp(t, 'wl-det');
    const root = path.join(dir, 'tree');
    makeTree(root);
    const store = await createLocalStore({ root: path.join(dir, 'store') });
    const a = await writeLayer({ dir: root, ingester: store });
    const b = await writeLayer({ dir: root, ingester: store });
    assert.equal(a.digest, b.digest);
    assert.equal(a.diffId, b.diffId);

    // A copy of the tree made at another time (new inodes, same mtimes) gives the same bytes.
    const copy = path.join(dir, 'copy');
    execFileSync('cp', ['-a', root, copy]);
    assert.equal((await writeLayer({ dir: copy, ingester: store })).digest, a.digest);

    // Files written during a build are newer than SOURCE_DATE_EPOCH: all clamped, so touching one changes nothing.
    const epoch = T0 - 100;
    const c = await writeLayer({ dir: root, ingester: store, sourceDateEpoch: epoch });
    fs.utimesSync(path.join(root, 'etc/app/config'), new Date(), new Date());
    fs.writeFileSync(path.join(root, 'empty'), '');
    const d = await writeLayer({ dir: root, ingester: store, sourceDateEpoch: epoch });
    assert.equal(d.digest, c.digest, 'touching files after the epoch changes nothing');
    const e = await writeLayer({ dir: root, ingester: store });
    assert.notEqual(e.digest, a.digest, 'without an epoch the new mtime shows');

    setTimes(root, T0 + 1000);
    const entries = await listLayer({ source: store.path((await writeLayer({ dir: root, ingester: store, sourceDateEpoch: epoch })).digest) });
    assert.ok(entries.every((x) => x.mtime === epoch), 'mtimes later than the epoch are clamped to it');
    setTimes(root, T0);
    const older = await listLayer({ source: store.path((await writeLayer({ dir: root, ingester: store, sourceDateEpoch: T0 + 500 })).digest) });
    assert.ok(older.every((x) => x.mtime === T0), 'earlier mtimes are kept');
  });

  test('diskBytes is what a du walk of the folder counts: blocks, root included, hard links once, holes free', async (t) => {
    const dir = tmp(t, 'wl-du');
    const root = path.join(dir, 'tree');
    fs.mkdirSync(root);
    makeTree(root);
    // a file with a 64 MiB hole: its blocks, not its length, count
    const fd = fs.openSync(path.join(root, 'holey'), 'w');
    fs.writeSync(fd, 'x', 64 * 1024 * 1024);
    fs.closeSync(fd);
    for (let i = 0; i < 40; i++) fs.writeFileSync(path.join(root, 'etc', `f${i}`), 'y'.repeat(i * 300));
    const store = await createLocalStore({ root: path.join(dir, 'store') });
    const info = await writeLayer({ dir: root, ingester: store });
    const du = Number(execFileSync('du', ['-s', '-B1', root], { encoding: 'utf8' }).split('\t')[0]);
    assert.equal(info.diskBytes, du);
    assert.ok(info.diskBytes < 64 * 1024 * 1024 && info.diskBytes > 3 * 1024 * 1024, String(info.diskBytes));
  });

  test('an empty folder gives an empty layer; sockets are skipped', async (t) => {
    const dir = tmp(t, 'wl-empty');
    const root = path.join(dir, 'tree');
    fs.mkdirSync(root);
    const store = await createLocalStore({ root: path.join(dir, 'store') });
    const info = await writeLayer({ dir: root, ingester: store, compression: 'none' });
    assert.equal(info.entries, 0);
    assert.equal(info.uncompressedSize, 1024);

    const net = await import('node:net');
    const server = net.createServer();
    await new Promise<void>((resolve) => server.listen(path.join(root, 'sock'), resolve));
    t.after(() => server.close());
    fs.writeFileSync(path.join(root, 'file'), 'x');
    const listed = await listLayer({ source: store.path((await writeLayer({ dir: root, ingester: store })).digest) });
    assert.deepEqual(listed.map((e) => e.path), ['file']);
  });

  test('an aborted write rejects and leaves no blob or temp file', async (t) => {
    const dir = tmp(t, 'wl-abort');
    const root = path.join(dir, 'tree');
    makeTree(root);
    const store = await createLocalStore({ root: path.join(dir, 'store') });
    const ac = new AbortController();
    ac.abort(new Error('stop'));
    await assert.rejects(writeLayer({ dir: root, ingester: store, signal: ac.signal }), /stop/);
    assert.deepEqual(fs.readdirSync(path.join(dir, 'store', 'blobs', 'sha256')), []);
    assert.deepEqual(fs.readdirSync(path.join(dir, 'store', 'ingest')), []);
  });
});

describe('sparse files', () => {
  const GIB = 1024 ** 3;
  /** A 1 GiB file with data at 0, in the middle and at the end (no trailing hole) and another ending in a hole. */
  function makeSparse(root: string): void {
    fs.mkdirSync(path.join(root, 'data'), { recursive: true });
    const a = path.join(root, 'data/disk.img');
    fs.closeSync(fs.openSync(a, 'w'));
    fs.truncateSync(a, GIB);
    const fd = fs.openSync(a, 'r+');
    fs.writeSync(fd, Buffer.from('head'), 0, 4, 0);
    fs.writeSync(fd, Buffer.alloc(10_000, 0x61), 0, 10_000, 512 * 1024 * 1024 + 100);
    fs.writeSync(fd, Buffer.from('tail'), 0, 4, GIB - 4);
    fs.closeSync(fd);
    const b = path.join(root, 'hole-at-end');
    fs.writeFileSync(b, 'start');
    fs.truncateSync(b, 300 * 1024 * 1024);
    setTimes(root, T0);
  }
  function expectContent(file: string): void {
    const fd = fs.openSync(file, 'r');
    const at = (pos: number, len: number): string => {
      const b = Buffer.alloc(len);
      fs.readSync(fd, b, 0, len, pos);
      return b.toString('latin1');
    };
    try {
      assert.equal(fs.fstatSync(fd).size, GIB);
      assert.equal(at(0, 6), 'head\0\0');
      assert.equal(at(512 * 1024 * 1024 + 99, 3), '\0aa');
      assert.equal(at(512 * 1024 * 1024 + 10_099, 2), 'a\0');
      assert.equal(at(GIB - 6, 6), '\0\0tail');
      assert.ok(fs.fstatSync(fd).blocks * 512 < 1024 * 1024, `${file} keeps its holes (${fs.fstatSync(fd).blocks} blocks)`);
    } finally {
      fs.closeSync(fd);
    }
  }

  test('are written as GNU sparse 1.0: a small layer that kiln and GNU tar unpack with the holes kept', async (t) => {
    const dir = tmp(t, 'wl-sparse');
    const root = path.join(dir, 'tree');
    makeSparse(root);
    const store = await createLocalStore({ root: path.join(dir, 'store') });
    const info = await writeLayer({ dir: root, ingester: store });
    assert.ok(info.size < 64 * 1024, `blob is ${info.size} bytes`);
    assert.ok(info.uncompressedSize < 64 * 1024, `tar is ${info.uncompressedSize} bytes`);
    const entries = await listLayer({ source: store.path(info.digest) });
    const img = entries.find((e) => e.path === 'data/disk.img');
    assert.equal(img?.size, GIB);
    assert.deepEqual(img?.sparse, [[0, 4096], [512 * 1024 * 1024, 12288], [GIB - 4096, 4096]]);
    const end = entries.find((e) => e.path === 'hole-at-end');
    const digests = await listLayer({ source: store.path(info.digest), withDigest: true });
    const want = createHash('sha256').update('start');
    for (let left = 300 * 1024 * 1024 - 5; left > 0; left -= 1024 * 1024) want.update(Buffer.alloc(Math.min(left, 1024 * 1024)));
    assert.equal(digests.find((e) => e.path === 'hole-at-end')?.sha256, want.digest('hex'), 'withDigest hashes the holes as zeros');
    assert.deepEqual([end?.size, end?.sparse], [300 * 1024 * 1024, [[0, 4096], [300 * 1024 * 1024, 0]]], "a last empty segment marks the trailing hole");

    const mine = path.join(dir, 'mine');
    await applyLayer({ source: store.path(info.digest), dest: mine, mode: 'merge' });
    expectContent(path.join(mine, 'data/disk.img'));
    assert.equal(fs.statSync(path.join(mine, 'hole-at-end')).size, 300 * 1024 * 1024);

    const gnu = path.join(dir, 'gnu');
    fs.mkdirSync(gnu);
    execFileSync('tar', ['-xzf', store.path(info.digest), '-C', gnu]);
    expectContent(path.join(gnu, 'data/disk.img'));
    assert.deepEqual(fs.readdirSync(gnu).sort(), ['data', 'hole-at-end'], 'GNU tar reads the real names');
    execFileSync('cmp', [path.join(root, 'hole-at-end'), path.join(gnu, 'hole-at-end')]);

    // the same tree gives the same layer; the content id follows the bytes
    const again = await writeLayer({ dir: root, ingester: store });
    assert.equal(again.digest, info.digest);
    fs.writeFileSync(path.join(root, 'data/disk.img'), 'x', { flag: 'r+' });
    fs.utimesSync(path.join(root, 'data/disk.img'), T0, T0);
    assert.notEqual((await writeLayer({ dir: root, ingester: store })).contentId, info.contentId);
  });

  test('a sparse 1.0 archive made by GNU tar unpacks with its holes', async (t) => {
    const dir = tmp(t, 'wl-gnusparse');
    const root = path.join(dir, 'tree');
    makeSparse(root);
    const archive = path.join(dir, 'gnu.tar');
    execFileSync('tar', ['--sparse', '--sparse-version=1.0', '--format=pax', '-cf', archive, '-C', root, '.']);
    assert.ok(fs.statSync(archive).size < 1024 * 1024);
    const out = path.join(dir, 'out');
    await applyLayer({ source: archive, dest: out, mode: 'overlay' });
    expectContent(path.join(out, 'data/disk.img'));
    execFileSync('cmp', [path.join(root, 'hole-at-end'), path.join(out, 'hole-at-end')]);
  });

  test('a big file is streamed: memory stays bounded while it is compressed', async (t) => {
    const dir = tmp(t, 'wl-bigfile');
    const root = path.join(dir, 'tree');
    fs.mkdirSync(root);
    const file = path.join(root, 'big.bin');
    const chunk = Buffer.alloc(1024 * 1024);
    const fd = fs.openSync(file, 'w');
    for (let i = 0; i < 384; i++) {
      chunk.fill(i & 0xff, 0, 4096);
      fs.writeSync(fd, chunk);
    }
    fs.closeSync(fd);
    const store = await createLocalStore({ root: path.join(dir, 'store') });
    global.gc?.();
    const before = process.memoryUsage().rss;
    let peak = before;
    const timer = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 5);
    try {
      const info = await writeLayer({ dir: root, ingester: store, gzipLevel: 1 });
      assert.equal(info.uncompressedSize, 384 * 1024 * 1024 + 512 + 1024);
    } finally {
      clearInterval(timer);
    }
    assert.ok(peak - before < 128 * 1024 * 1024, `rss grew by ${Math.round((peak - before) / 1024 / 1024)} MiB for a 384 MiB file`);
  });
});

test('parallelGzip: members compressed in parallel give the same tar (diffId), deterministically, readable by gzip', async (t) => {
  const dir = tmp(t, 'wl-pgz');
  const root = path.join(dir, 'tree');
  makeTree(root);
  for (let i = 0; i < 40; i++) fs.writeFileSync(path.join(root, `f${i}`), Buffer.alloc(200_000, i));
  setTimes(root, T0);
  const store = await createLocalStore({ root: path.join(dir, 'store') });
  const single = await writeLayer({ dir: root, ingester: store });
  const a = await writeLayer({ dir: root, ingester: store, parallelGzip: true });
  const b = await writeLayer({ dir: root, ingester: store, parallelGzip: true });
  assert.equal(a.diffId, single.diffId);
  assert.equal(a.contentId, single.contentId);
  assert.equal(a.digest, b.digest, 'deterministic');
  assert.notEqual(a.digest, single.digest, 'several members, not one stream');
  const tar = execFileSync('gzip', ['-dc', store.path(a.digest)], { maxBuffer: 64 * 1024 * 1024 });
  assert.equal(`sha256:${createHash('sha256').update(tar).digest('hex')}`, a.diffId);
});
