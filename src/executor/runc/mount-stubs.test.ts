import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { planMountStubs, removeMountStubs } from './mount-stubs.js';

async function withRoot(fn: (root: string) => Promise<void>): Promise<void> {
  const root = await mkdtemp(path.join(tmpdir(), 'kiln-stubs-'));
  try {
    await fn(root);
  } finally {
    await rm(root, { recursive: true, force: true });
  }
}

test('plans every missing component from the first missing one down', async () => {
  await withRoot(async (root) => {
    await mkdir(path.join(root, 'etc'));
    await mkdir(path.join(root, 'proc'));
    await writeFile(path.join(root, 'etc', 'hosts'), '');
    const stubs = await planMountStubs({
      rootfs: root,
      destinations: ['/proc', '/dev', '/dev/pts', '/etc/hosts', '/etc/resolv.conf', '/a/b/c', '/a/b/d'],
    });
    assert.deepEqual(stubs.sort(), ['/a', '/a/b', '/a/b/c', '/a/b/d', '/dev', '/dev/pts', '/etc/resolv.conf']);
  });
});

test('plans resolved paths when the existing part goes through a symlink', async () => {
  await withRoot(async (root) => {
    await mkdir(path.join(root, 'private', 'etc'), { recursive: true });
    await symlink('/private/etc', path.join(root, 'etc'));
    assert.deepEqual(await planMountStubs({ rootfs: root, destinations: ['/etc/hosts'] }), ['/private/etc/hosts']);
  });
});

test('removes only stubs that are still empty, deepest first', async () => {
  await withRoot(async (root) => {
    await mkdir(path.join(root, 'dev'));
    await mkdir(path.join(root, 'cache', 'tmp'), { recursive: true });
    await writeFile(path.join(root, 'cache', 'kept'), 'x');
    await mkdir(path.join(root, 'etc'));
    await writeFile(path.join(root, 'etc', 'hosts'), '');
    await writeFile(path.join(root, 'etc', 'resolv.conf'), 'nameserver 1.1.1.1\n');
    const removed = await removeMountStubs({
      rootfs: root,
      stubs: ['/dev', '/dev/pts', '/cache', '/cache/tmp', '/etc/hosts', '/etc/resolv.conf'],
    });
    assert.deepEqual(removed.sort(), ['/cache/tmp', '/dev', '/etc/hosts']);
    assert.equal(existsSync(path.join(root, 'dev')), false);
    assert.ok(existsSync(path.join(root, 'cache', 'kept')));
    assert.ok(existsSync(path.join(root, 'etc', 'resolv.conf')), 'a file with content is kept');
    assert.ok(existsSync(path.join(root, 'etc')), 'etc was not a stub');
  });
});
