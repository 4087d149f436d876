import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { getXattr, listXattrs, mount, MNT_DETACH, MS_NOEXEC, setXattr, umount, xattrsOf } from './index.js';

const root = process.getuid?.() === 0;

function needsRoot(t: { skip(m: string): void }): boolean {
  if (root) return false;
  if (process.env.CI === 'true') assert.fail('needs root (trusted.* xattrs, mount)');
  t.skip('needs root');
  return true;
}

/** What getfattr (Debian's attr, an independent reader) says `p` holds, as name → hex. */
function getfattr(p: string): Record<string, string> {
  const r = spawnSync('getfattr', ['-h', '-d', '-m', '-', '-e', 'hex', '--absolute-names', p], { encoding: 'utf8' });
  const out: Record<string, string> = {};
  for (const line of r.stdout.split('\n')) {
    const m = /^([^#=][^=]*)=0x([0-9a-f]*)$/.exec(line);
    if (m) out[m[1]!] = m[2]!;
  }
  return out;
}

test('xattrs: binary values round-trip, getfattr reads what setXattr wrote, a symlink is not followed', (t) => {
  if (needsRoot(t)) return;
  const dir = mkdtempSync(path.join(tmpdir(), 'kiln-sys-'));
  try {
    const f = path.join(dir, 'f');
    writeFileSync(f, 'x');
    symlinkSync('f', path.join(dir, 'link'));
    assert.deepEqual(listXattrs(f), []);
    assert.equal(getXattr(f, 'user.none'), undefined);
    const bytes = Buffer.from([0x00, 0xff, 0x80, 0xfe, 0x0a]);
    setXattr(f, 'user.bin', bytes);
    setXattr(f, 'trusted.t', Buffer.from('y'));
    setXattr(f, 'user.empty', Buffer.alloc(0));
    assert.deepEqual(getXattr(f, 'user.bin'), bytes);
    assert.deepEqual(getXattr(f, 'user.empty'), Buffer.alloc(0));
    assert.deepEqual(new Set(listXattrs(f)), new Set(['user.bin', 'trusted.t', 'user.empty']));
    assert.deepEqual(getfattr(f), { 'user.bin': '00ff80fe0a', 'trusted.t': '79', 'user.empty': '' });
    // the link itself: trusted.* is allowed on a symlink, and the target keeps its own
    const link = path.join(dir, 'link');
    setXattr(link, 'trusted.onlink', Buffer.from('l'));
    assert.deepEqual(xattrsOf(link), [['trusted.onlink', Buffer.from('l')]]);
    assert.equal(getXattr(f, 'trusted.onlink'), undefined);
    // a value larger than a first guess, and an update
    const big = Buffer.alloc(3000, 7);
    setXattr(f, 'user.bin', big);
    assert.deepEqual(getXattr(f, 'user.bin'), big);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('errors carry node:fs codes and name the path', () => {
  const missing = path.join(tmpdir(), `kiln-sys-missing-${process.pid}`);
  assert.throws(() => listXattrs(missing), (e: NodeJS.ErrnoException) => e.code === 'ENOENT' && e.syscall === 'llistxattr' && e.message.includes(missing));
  assert.throws(() => getXattr(missing, 'user.x'), (e: NodeJS.ErrnoException) => e.code === 'ENOENT');
  assert.throws(() => setXattr(missing, 'user.x', Buffer.from('1')), (e: NodeJS.ErrnoException) => e.code === 'ENOENT' && e.syscall === 'lsetxattr');
});

test('mount and umount: a tmpfs with flags and options, seen in /proc/self/mounts; a bad mount is EINVAL/ENODEV', (t) => {
  if (needsRoot(t)) return;
  const dir = mkdtempSync(path.join(tmpdir(), 'kiln-sys-'));
  const mp = path.join(dir, 'm');
  mkdirSync(mp);
  try {
    mount('kiln-test', mp, 'tmpfs', MS_NOEXEC, 'size=65536,mode=0700');
    const line = readFileSync('/proc/self/mounts', 'utf8').split('\n').find((l) => l.split(' ')[1] === mp);
    assert.ok(line, 'the tmpfs is mounted');
    assert.match(line, /^kiln-test \S+ tmpfs \S*noexec/);
    assert.match(line, /size=64k/);
    writeFileSync(path.join(mp, 'inside'), 'x');
    umount(mp);
    assert.ok(!readFileSync('/proc/self/mounts', 'utf8').includes(` ${mp} `), 'unmounted');
    assert.throws(() => umount(mp), (e: NodeJS.ErrnoException) => e.code === 'EINVAL' && e.syscall === 'umount2');
    assert.throws(() => mount('x', mp, 'no-such-fs-type', 0, ''), (e: NodeJS.ErrnoException) => e.code === 'ENODEV' && e.syscall === 'mount');
    // a detach of a busy mount succeeds at once
    mount('kiln-test', mp, 'tmpfs', 0, 'size=65536');
    umount(mp, MNT_DETACH);
    assert.ok(!readFileSync('/proc/self/mounts', 'utf8').includes(` ${mp} `));
  } finally {
    try {
      umount(mp, MNT_DETACH);
    } catch {
      /* not mounted */
    }
    rmSync(dir, { recursive: true, force: true });
  }
});
