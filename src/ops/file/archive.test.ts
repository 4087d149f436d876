import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import tarStream from 'tar-stream';
import { copyInto } from './copy-into.js';
import { isArchive } from './archive.js';

const isRoot = process.getuid?.() === 0;
const base = fs.mkdtempSync(path.join(os.tmpdir(), 'kiln-archive-'));
after(() => fs.rmSync(base, { recursive: true, force: true }));
let n = 0;
const fresh = (): string => {
  const d = path.join(base, `d${n++}`);
  fs.mkdirSync(d);
  return d;
};

/** A context holding one archive of a small tree made with the system tar. */
function contextWithArchive(flag: string, name: string): string {
  const ctx = fresh();
  const content = fresh();
  fs.mkdirSync(path.join(content, 'top/sub'), { recursive: true });
  fs.writeFileSync(path.join(content, 'top/a.txt'), 'alpha');
  fs.writeFileSync(path.join(content, 'top/sub/b.txt'), 'beta');
  fs.chmodSync(path.join(content, 'top/a.txt'), 0o640);
  fs.symlinkSync('a.txt', path.join(content, 'top/link'));
  fs.linkSync(path.join(content, 'top/a.txt'), path.join(content, 'top/hard'));
  fs.utimesSync(path.join(content, 'top/a.txt'), 1485449953, 1485449953);
  if (isRoot) execFileSync('chown', ['-R', '1234:5678', path.join(content, 'top')]);
  execFileSync('tar', [flag, path.join(ctx, name), '--numeric-owner', '-C', content, 'top']);
  return ctx;
}

async function tarOf(entries: Array<{ header: tarStream.Header | Record<string, unknown>; body?: string }>): Promise<Buffer> {
  const pack = tarStream.pack();
  const chunks: Buffer[] = [];
  pack.on('data', (d: unknown) => {
    chunks.push(d as Buffer);
  });
  const done = new Promise<void>((r) => pack.on('end', () => r()));
  for (const e of entries) {
    const header = e.header as Parameters<typeof pack.entry>[0];
    if (e.body === undefined) pack.entry(header);
    else pack.entry(header, e.body);
  }
  pack.finalize();
  await done;
  return Buffer.concat(chunks);
}

describe('ADD: local archives', () => {
  for (const [flag, name] of [['-cf', 'plain.tar'], ['-czf', 'g.tgz'], ['-cjf', 'b.tar.bz2'], ['-cJf', 'x.tar.xz'], ['-cJf', 'no-extension']]) {
    test(`unpacks ${name} (detected by content)`, async () => {
      const ctx = contextWithArchive(flag, name);
      assert.equal(await isArchive(path.join(ctx, name)), true);
      const dst = fresh();
      const r = await copyInto({ srcRoot: ctx, sources: [name], destRoot: dst, dest: '/opt', workdir: '/', unpackArchives: true });
      assert.equal(fs.readFileSync(path.join(dst, 'opt/top/a.txt'), 'utf8'), 'alpha');
      assert.equal(fs.readFileSync(path.join(dst, 'opt/top/sub/b.txt'), 'utf8'), 'beta');
      assert.equal(fs.readlinkSync(path.join(dst, 'opt/top/link')), 'a.txt');
      const a = fs.statSync(path.join(dst, 'opt/top/a.txt'));
      assert.equal(a.ino, fs.statSync(path.join(dst, 'opt/top/hard')).ino);
      assert.equal(a.mode & 0o7777, 0o640);
      assert.equal(Math.floor(a.mtimeMs / 1000), 1485449953);
      if (isRoot) assert.deepEqual([a.uid, a.gid], [1234, 5678]);
      assert.ok(r.files >= 4);
    });
  }

  test('--chown overrides the archive owners (root)', { skip: isRoot ? false : 'needs root' }, async () => {
    const ctx = contextWithArchive('-czf', 'a.tgz');
    const dst = fresh();
    await copyInto({ srcRoot: ctx, sources: ['a.tgz'], destRoot: dst, dest: '/', workdir: '/', unpackArchives: true, chown: { uid: 7, gid: 8 } });
    const st = fs.lstatSync(path.join(dst, 'top/sub/b.txt'));
    assert.deepEqual([st.uid, st.gid], [7, 8]);
  });

  test('a non-archive or an archive inside a copied directory is copied as a file; COPY never unpacks', async () => {
    const ctx = contextWithArchive('-czf', 'a.tgz');
    fs.writeFileSync(path.join(ctx, 'empty.tar.gz'), '');
    fs.mkdirSync(path.join(ctx, 'dir'));
    fs.copyFileSync(path.join(ctx, 'a.tgz'), path.join(ctx, 'dir/inner.tgz'));
    const dst = fresh();
    await copyInto({ srcRoot: ctx, sources: ['empty.tar.gz', 'dir'], destRoot: dst, dest: '/o/', workdir: '/', unpackArchives: true });
    assert.deepEqual(fs.readdirSync(path.join(dst, 'o')).sort(), ['empty.tar.gz', 'inner.tgz']);
    const dst2 = fresh();
    await copyInto({ srcRoot: ctx, sources: ['a.tgz'], destRoot: dst2, dest: '/o/', workdir: '/' });
    assert.deepEqual(fs.readdirSync(path.join(dst2, 'o')), ['a.tgz']);
  });

  test('existing entries are replaced; a directory entry merges into an existing directory', async () => {
    const ctx = fresh();
    fs.writeFileSync(path.join(ctx, 'r.tar'), await tarOf([
      { header: { name: 'was-dir', type: 'file', mode: 0o644 }, body: 'now a file' },
      { header: { name: 'keep', type: 'directory', mode: 0o700 } },
      { header: { name: 'keep/new', type: 'file', mode: 0o644 }, body: 'n' },
    ]));
    const dst = fresh();
    fs.mkdirSync(path.join(dst, 'was-dir/deep'), { recursive: true });
    fs.mkdirSync(path.join(dst, 'keep'));
    fs.writeFileSync(path.join(dst, 'keep/old'), 'o');
    await copyInto({ srcRoot: ctx, sources: ['r.tar'], destRoot: dst, dest: '/', workdir: '/', unpackArchives: true });
    assert.equal(fs.readFileSync(path.join(dst, 'was-dir'), 'utf8'), 'now a file');
    assert.deepEqual(fs.readdirSync(path.join(dst, 'keep')).sort(), ['new', 'old']);
    assert.equal(fs.statSync(path.join(dst, 'keep')).mode & 0o777, 0o700);
  });

  test("entries with '..' or escaping hard links are refused with ERR_KILN_ARCHIVE_UNSAFE", async () => {
    const ctx = fresh();
    fs.writeFileSync(path.join(ctx, 'evil.tar'), await tarOf([{ header: { name: '../../evil.txt', type: 'file', mode: 0o644 }, body: 'x' }]));
    fs.writeFileSync(path.join(ctx, 'hard.tar'), await tarOf([{ header: { name: 'h', type: 'link', linkname: '../../../etc/passwd' } }]));
    for (const name of ['evil.tar', 'hard.tar']) {
      const dst = fresh();
      fs.mkdirSync(path.join(dst, 'root'));
      await assert.rejects(
        copyInto({ srcRoot: ctx, sources: [name], destRoot: path.join(dst, 'root'), dest: '/a/b', workdir: '/', unpackArchives: true }),
        (e: unknown) => (e as { code?: string }).code === 'ERR_KILN_ARCHIVE_UNSAFE',
      );
      assert.equal(fs.existsSync(path.join(dst, 'evil.txt')), false);
      assert.equal(fs.existsSync(path.join(dst, 'root/evil.txt')), false);
    }
  });

  test('absolute names and symlinked parents resolve inside the destination (chroot semantics)', async () => {
    const ctx = fresh();
    fs.writeFileSync(path.join(ctx, 'links.tar'), await tarOf([
      { header: { name: '/abs.txt', type: 'file', mode: 0o644 }, body: 'abs' },
      { header: { name: 'up', type: 'symlink', linkname: '..' } },
      { header: { name: 'up/etc/myfile', type: 'file', mode: 0o644 }, body: 'clamped' },
      { header: { name: 'sys', type: 'symlink', linkname: '/etc' } },
      { header: { name: 'sys/kiln-archive-test', type: 'file', mode: 0o644 }, body: 'inside' },
    ]));
    const dst = fresh();
    await copyInto({ srcRoot: ctx, sources: ['links.tar'], destRoot: dst, dest: '/x', workdir: '/', unpackArchives: true });
    assert.equal(fs.readFileSync(path.join(dst, 'x/abs.txt'), 'utf8'), 'abs');
    assert.equal(fs.readFileSync(path.join(dst, 'x/etc/myfile'), 'utf8'), 'clamped');
    assert.equal(fs.readFileSync(path.join(dst, 'x/etc/kiln-archive-test'), 'utf8'), 'inside');
    assert.equal(fs.existsSync('/etc/kiln-archive-test'), false);
    assert.equal(fs.readlinkSync(path.join(dst, 'x/sys')), '/etc');
  });
});

describe('ADD: hostile archives', () => {
  test('a folder replaced by a symlink to the host after its entries: the host folder keeps its times', async () => {
    const ctx = fresh();
    const host = fresh();
    fs.mkdirSync(path.join(host, 'sub'));
    for (const p of [path.join(host, 'sub'), host]) fs.utimesSync(p, 1_500_000_000, 1_500_000_000);
    fs.writeFileSync(path.join(ctx, 'swap.tar'), await tarOf([
      { header: { name: 'd', type: 'directory', mode: 0o755, mtime: new Date(1000) } },
      { header: { name: 'd/sub', type: 'directory', mode: 0o700, mtime: new Date(1000) } },
      { header: { name: 'd', type: 'symlink', linkname: host } },
    ]));
    const dst = fresh();
    await copyInto({ srcRoot: ctx, sources: ['swap.tar'], destRoot: dst, dest: '/', workdir: '/', unpackArchives: true });
    assert.equal(fs.readlinkSync(path.join(dst, 'd')), host);
    assert.equal(fs.statSync(path.join(host, 'sub')).mtimeMs, 1_500_000_000_000, 'the host folder keeps its time');
    assert.equal(fs.statSync(path.join(host, 'sub')).mode & 0o777, 0o755, 'and its mode');
    assert.deepEqual(fs.readdirSync(host), ['sub']);
  });
});
