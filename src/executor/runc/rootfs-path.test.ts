import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ensureDirInRoot, readRootFile, resolveInRoot } from './rootfs-path.js';

async function withRoot(fn: (root: string) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(path.join(tmpdir(), 'kiln-rootfs-'));
  try {
    await fn(path.join(dir, 'root'));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

test('symlinks resolve inside the rootfs, absolute targets and .. included', async () => {
  await withRoot(async (root) => {
    await mkdir(path.join(root, 'real', 'etc'), { recursive: true });
    await symlink('/real/etc', path.join(root, 'etc'));
    await symlink('../../../../../..', path.join(root, 'real', 'up'));
    await symlink('etc', path.join(root, 'real', 'rel'));
    assert.equal(await resolveInRoot(root, '/etc/passwd'), '/real/etc/passwd');
    assert.equal(await resolveInRoot(root, 'real/up/etc'), '/real/etc');
    assert.equal(await resolveInRoot(root, '/real/rel/x/y'), '/real/etc/x/y');
    assert.equal(await resolveInRoot(root, '/../../..'), '/');
    assert.equal(await resolveInRoot(root, '/missing/./a/../b'), '/missing/b');
  });
});

test('symlink loops are reported, not followed forever', async () => {
  await withRoot(async (root) => {
    await mkdir(root);
    await symlink('/b', path.join(root, 'a'));
    await symlink('/a', path.join(root, 'b'));
    await assert.rejects(resolveInRoot(root, '/a/x'), /too many symlinks/);
  });
});

test('readRootFile never reads outside the rootfs', async () => {
  await withRoot(async (root) => {
    await mkdir(path.join(root, 'etc'), { recursive: true });
    const outside = path.join(path.dirname(root), 'secret');
    await writeFile(outside, 'host secret');
    await symlink(outside, path.join(root, 'etc', 'passwd'));
    await symlink('../../secret', path.join(root, 'etc', 'group'));
    assert.equal(await readRootFile(root, '/etc/passwd'), undefined);
    assert.equal(await readRootFile(root, '/etc/group'), undefined);
    await writeFile(path.join(root, 'secret'), 'inside');
    assert.equal(await readRootFile(root, '/etc/group'), 'inside');
  });
});

test('ensureDirInRoot creates the directory through rootfs symlinks, mode 0755 whatever the umask', async () => {
  const oldMask = process.umask(0o077);
  try {
    await ensureDirCases();
  } finally {
    process.umask(oldMask);
  }
});

async function ensureDirCases(): Promise<void> {
  await withRoot(async (root) => {
    await mkdir(path.join(root, 'data'), { recursive: true });
    await symlink('/data', path.join(root, 'app'));
    await ensureDirInRoot(root, '/app/src/x');
    const st = await stat(path.join(root, 'data', 'src', 'x'));
    assert.ok(st.isDirectory());
    assert.equal(st.mode & 0o777, 0o755);
    assert.equal((await stat(path.join(root, 'data', 'src'))).mode & 0o777, 0o755);
    await symlink('/', path.join(root, 'escape'));
    await ensureDirInRoot(root, '/escape/../../made');
    assert.ok(existsSync(path.join(root, 'made')));
    assert.equal(existsSync(path.join(path.dirname(root), 'made')), false);
    await writeFile(path.join(root, 'file'), '');
    await assert.rejects(ensureDirInRoot(root, '/file'), /not a directory/);
    await assert.rejects(ensureDirInRoot(root, '/file/sub'), { code: 'ENOTDIR' });
  });
}
