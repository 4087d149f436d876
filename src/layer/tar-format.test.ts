import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, test } from 'node:test';
import {
  BLOCK,
  END_OF_ARCHIVE,
  decodeBlock,
  encodeHeader,
  padding,
  paxRecord,
  parseNumber,
  parsePax,
  type TarHeader,
} from './tar-format.js';
import { TarParser, type ParsedEntry } from './tar-parser.js';

function tarOf(entries: Array<TarHeader & { data?: Buffer }>): Buffer {
  const parts: Buffer[] = [];
  for (const e of entries) {
    const data = e.data ?? Buffer.alloc(0);
    parts.push(encodeHeader({ ...e, size: data.length }), data, padding(data.length));
  }
  parts.push(END_OF_ARCHIVE);
  return Buffer.concat(parts);
}

function parseAll(buf: Buffer, chunk = buf.length): Array<ParsedEntry & { content: Buffer }> {
  const out: Array<ParsedEntry & { content: Buffer }> = [];
  const p = new TarParser((e) => {
    const item = { ...e, content: Buffer.alloc(0) };
    out.push(item);
    const parts: Buffer[] = [];
    return { data: (c) => parts.push(Buffer.from(c)), end: () => (item.content = Buffer.concat(parts)) };
  });
  for (let i = 0; i < buf.length; i += chunk) p.push(buf.subarray(i, i + chunk));
  p.end();
  assert.ok(p.ended);
  return out;
}

const base = { mode: 0o644, uid: 0, gid: 0, size: 0, mtime: 1700000000 };

describe('tar header codec', () => {
  test('a plain entry is one ustar block with empty uname/gname and correct fields', () => {
    const h = encodeHeader({ ...base, path: 'etc/hosts', type: 'file', size: 42, mode: 0o4755, uid: 1234, gid: 99 });
    assert.equal(h.length, BLOCK);
    assert.equal(h.toString('latin1', 257, 265), 'ustar\u000000');
    assert.ok(h.subarray(265, 329).every((b) => b === 0), 'uname and gname are empty');
    const d = decodeBlock(h);
    assert.deepEqual(
      { name: d.name, mode: d.mode, uid: d.uid, gid: d.gid, size: d.size, mtime: d.mtime, typeflag: d.typeflag },
      { name: 'etc/hosts', mode: 0o4755, uid: 1234, gid: 99, size: 42, mtime: 1700000000, typeflag: 0x30 },
    );
  });

  test('a 150-byte ASCII path is split into ustar prefix and name, without PAX', () => {
    const p = `${'a'.repeat(60)}/${'b'.repeat(60)}/${'c'.repeat(28)}`;
    const h = encodeHeader({ ...base, path: p, type: 'file' });
    assert.equal(h.length, BLOCK);
    assert.equal(decodeBlock(h).name, p);
  });

  test('paths that cannot be split, non-ASCII paths and long link targets use PAX records', () => {
    const long = 'x'.repeat(300);
    const cases: TarHeader[] = [
      { ...base, path: long, type: 'file' },
      { ...base, path: 'caf\u00e9/\u{1f600}.txt', type: 'file' },
      { ...base, path: 'l', type: 'symlink', linkname: `/${'t'.repeat(150)}` },
      { ...base, path: 'nl\nname', type: 'file' },
    ];
    for (const c of cases) {
      const buf = tarOf([c]);
      assert.equal(buf.subarray(156, 157).toString('latin1'), 'x', `PAX header for ${c.path.slice(0, 20)}`);
      const [e] = parseAll(buf);
      assert.equal(e.path, c.path);
      assert.equal(e.linkname, c.linkname);
    }
  });

  test('uid/gid above 2097151, sizes and negative mtimes survive through PAX', () => {
    const [e] = parseAll(tarOf([{ ...base, path: 'f', type: 'file', uid: 3_000_000, gid: 4_294_967_294, mtime: -5 }]));
    assert.equal(e.uid, 3_000_000);
    assert.equal(e.gid, 4_294_967_294);
    assert.equal(e.mtime, -5);
    // 262144 is where tar-stream truncates; ustar octal still holds it, no PAX needed.
    const h = encodeHeader({ ...base, path: 'g', type: 'file', uid: 262144 });
    assert.equal(h.length, BLOCK);
    assert.equal(decodeBlock(h).uid, 262144);
  });

  test('binary xattr values are carried byte for byte', () => {
    const cap = Buffer.from('0100000200040000000000000000000000000000', 'hex');
    const weird = Buffer.from([0xff, 0x00, 0xfe, 0x80, 0x0a, 0x3d]);
    const [e] = parseAll(tarOf([{ ...base, path: 'bin/ping', type: 'file', xattrs: [['security.capability', cap], ['user.x', weird]] }]));
    const x = new Map(e.xattrs);
    assert.deepEqual(x.get('security.capability'), cap);
    assert.deepEqual(x.get('user.x'), weird);
  });

  test('PAX record lengths are right around digit-count boundaries', () => {
    for (let n = 80; n < 1010; n++) {
      const rec = paxRecord('k', Buffer.alloc(n, 0x61));
      const len = Number(rec.toString('latin1', 0, rec.indexOf(0x20)));
      assert.equal(len, rec.length, `value length ${n}`);
      assert.deepEqual(parsePax(rec).get('k'), Buffer.alloc(n, 0x61));
    }
  });

  test('numeric fields: octal with spaces and NULs, GNU base-256', () => {
    const b = Buffer.alloc(12);
    b.write(' 0000755 \u0000', 0, 'latin1');
    assert.equal(parseNumber(b, 0, 8), 0o755);
    const big = Buffer.alloc(12);
    big[0] = 0x80;
    big.writeUIntBE(2 ** 40 + 7, 6, 6);
    assert.equal(parseNumber(big, 0, 12), 2 ** 40 + 7);
  });

  test('devices keep major/minor, directories end with a slash, hardlinks carry their target', () => {
    const [c, d, l] = parseAll(
      tarOf([
        { ...base, path: 'dev/null', type: 'character-device', devmajor: 1, devminor: 3 },
        { ...base, path: 'dir/', type: 'directory' },
        { ...base, path: 'b', type: 'link', linkname: 'a' },
      ]),
    );
    assert.deepEqual([c.type, c.devmajor, c.devminor], ['character-device', 1, 3]);
    assert.deepEqual([d.type, d.path], ['directory', 'dir/']);
    assert.deepEqual([l.type, l.linkname, l.size], ['link', 'a', 0]);
  });
});

describe('tar parser', () => {
  const archive = tarOf([
    { ...base, path: 'a/', type: 'directory', mode: 0o755 },
    { ...base, path: 'a/one', type: 'file', data: Buffer.from('hello') },
    { ...base, path: `a/${'n'.repeat(200)}`, type: 'file', data: Buffer.alloc(1500, 7), xattrs: [['user.k', Buffer.from([0, 1, 2])]] },
    { ...base, path: 'a/empty', type: 'file' },
  ]);

  test('gives the same entries whether fed at once or one byte at a time', () => {
    const whole = parseAll(archive);
    const bytes = parseAll(archive, 1);
    const odd = parseAll(archive, 777);
    assert.equal(whole.length, 4);
    for (const other of [bytes, odd]) {
      assert.deepEqual(
        other.map((e) => [e.path, e.size, e.content.toString('hex'), e.xattrs]),
        whole.map((e) => [e.path, e.size, e.content.toString('hex'), e.xattrs]),
      );
    }
    assert.equal(whole[1].content.toString(), 'hello');
    assert.deepEqual(whole[2].content, Buffer.alloc(1500, 7));
  });

  test('a truncated archive and a corrupt header are ERR_KILN_ARCHIVE_INVALID', () => {
    assert.throws(() => parseAll(archive.subarray(0, 1200)), { code: 'ERR_KILN_ARCHIVE_INVALID' });
    const bad = Buffer.from(archive);
    bad[BLOCK + 3] ^= 0xff; // inside the second header's name
    assert.throws(() => parseAll(bad), { code: 'ERR_KILN_ARCHIVE_INVALID' });
  });

  test('GNU tar reads what we write, and we read GNU tar (gnu and pax formats, long names, xattrs)', (t) => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kiln-tarfmt-'));
    t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
    const ours = path.join(dir, 'ours.tar');
    fs.writeFileSync(ours, archive);
    const listing = execFileSync('tar', ['-tf', ours], { encoding: 'utf8' }).trim().split('\n');
    assert.deepEqual(listing, ['a/', 'a/one', `a/${'n'.repeat(200)}`, 'a/empty']);

    const src = path.join(dir, 'src');
    const deep = path.join(src, 'd'.repeat(120), 'e'.repeat(120));
    fs.mkdirSync(deep, { recursive: true });
    fs.writeFileSync(path.join(deep, 'f'.repeat(150)), 'deep');
    fs.symlinkSync('t'.repeat(130), path.join(src, 'link'));
    fs.writeFileSync(path.join(src, 'x'), 'x');
    execFileSync('setfattr', ['-n', 'user.bin', '-v', '0xff00fe80', path.join(src, 'x')]);
    for (const format of ['gnu', 'pax']) {
      const file = path.join(dir, `${format}.tar`);
      execFileSync('tar', [`--format=${format}`, '--xattrs', '--xattrs-include=user.*', '-C', src, '-cf', file, '.']);
      const entries = parseAll(fs.readFileSync(file));
      const byPath = new Map(entries.map((e) => [e.path.replace(/^\.\//, ''), e]));
      const deepFile = `${'d'.repeat(120)}/${'e'.repeat(120)}/${'f'.repeat(150)}`;
      assert.equal(byPath.get(deepFile)?.content.toString(), 'deep', format);
      assert.equal(byPath.get('link')?.linkname, 't'.repeat(130), format);
      if (format === 'pax') assert.deepEqual(new Map(byPath.get('x')?.xattrs).get('user.bin'), Buffer.from('ff00fe80', 'hex'));
    }
  });
});
