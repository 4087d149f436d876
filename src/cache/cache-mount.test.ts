import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, promises as fsp, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { MountDef } from '../graph/index.js';
import { cacheMountDir, cacheMountKey, listCacheMounts, lockCacheMount, removeCacheMounts } from './cache-mount.js';

const def = (over: Partial<MountDef> = {}): MountDef => ({ type: 'cache', target: '/var/cache/apt', ...over });
const made: string[] = [];
const stateDir = (): string => {
  const d = mkdtempSync(path.join(tmpdir(), 'kiln-cm-'));
  made.push(d);
  return d;
};
after(() => {
  for (const d of made) rmSync(d, { recursive: true, force: true });
});

describe('cache mounts', () => {
  test('id defaults to the target; a seeded mount is keyed by its seed too', () => {
    assert.equal(cacheMountKey(def()), '/var/cache/apt');
    assert.equal(cacheMountKey(def({ id: 'apt' })), 'apt');
    assert.notEqual(cacheMountKey(def({ id: 'x' }), 'out1'), cacheMountKey(def({ id: 'x' }), 'out2'));
    assert.notEqual(cacheMountDir('/s', 'a'), cacheMountDir('/s', 'b'));
  });

  test('shared: the same directory for everyone, contents persist', async () => {
    const s = stateDir();
    const a = await lockCacheMount({ stateDir: s, def: def({ sharing: 'shared' }) });
    const b = await lockCacheMount({ stateDir: s, def: def({ sharing: 'shared' }) });
    assert.equal(a.dir, b.dir);
    await fsp.writeFile(path.join(a.dir, 'f'), 'x');
    await a.release();
    await b.release();
    const c = await lockCacheMount({ stateDir: s, def: def() });
    assert.equal(await fsp.readFile(path.join(c.dir, 'f'), 'utf8'), 'x');
    await c.release();
  });

  test('locked: a second user waits until the first releases', async () => {
    const s = stateDir();
    const a = await lockCacheMount({ stateDir: s, def: def({ sharing: 'locked' }) });
    let gotB = false;
    const pb = lockCacheMount({ stateDir: s, def: def({ sharing: 'locked' }) }).then((h) => ((gotB = true), h));
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(gotB, false, 'second locked user must wait');
    await a.release();
    const b = await pb;
    assert.equal(b.dir, a.dir);
    await b.release();
  });

  test('locked: waiting stops when the signal aborts', async () => {
    const s = stateDir();
    const a = await lockCacheMount({ stateDir: s, def: def({ sharing: 'locked' }) });
    const ac = new AbortController();
    const p = lockCacheMount({ stateDir: s, def: def({ sharing: 'locked' }), signal: ac.signal });
    setTimeout(() => ac.abort(new Error('stop')), 100);
    await assert.rejects(p, /stop/);
    await a.release();
  });

  test('locked: a lock left by a dead process is broken', async () => {
    const s = stateDir();
    const base = cacheMountDir(s, '/var/cache/apt');
    await fsp.mkdir(path.join(base, 'lock'), { recursive: true });
    await fsp.writeFile(path.join(base, 'lock', 'owner'), '999999999');
    const h = await lockCacheMount({ stateDir: s, def: def({ sharing: 'locked' }) });
    await h.release();
  });

  test('private: a concurrent user gets its own empty copy, thrown away on release', async () => {
    const s = stateDir();
    const a = await lockCacheMount({ stateDir: s, def: def({ sharing: 'private' }) });
    await fsp.writeFile(path.join(a.dir, 'mine'), 'a');
    const b = await lockCacheMount({ stateDir: s, def: def({ sharing: 'private' }) });
    assert.notEqual(a.dir, b.dir);
    assert.deepEqual(readdirSync(b.dir), []);
    await b.release();
    assert.equal(existsSync(b.dir), false);
    await a.release();
  });

  test('seed runs once, when the cache is created; mode is applied', async () => {
    const s = stateDir();
    let calls = 0;
    const seed = async (dir: string): Promise<void> => {
      calls++;
      await fsp.writeFile(path.join(dir, 'seeded'), 'yes');
    };
    const a = await lockCacheMount({ stateDir: s, def: def({ id: 'x', mode: 0o700 }), seedKey: 'o1', seed });
    assert.equal(await fsp.readFile(path.join(a.dir, 'seeded'), 'utf8'), 'yes');
    assert.equal((await fsp.stat(a.dir)).mode & 0o777, 0o700);
    await a.release();
    const b = await lockCacheMount({ stateDir: s, def: def({ id: 'x', mode: 0o700 }), seedKey: 'o1', seed });
    await b.release();
    assert.equal(calls, 1);
  });

  test('ls shows id, uses and builds; rm removes by id and refuses one in use', async () => {
    const s = stateDir();
    const a = await lockCacheMount({ stateDir: s, def: def({ id: 'pip' }), buildId: 'b1' });
    await fsp.writeFile(path.join(a.dir, 'f'), Buffer.alloc(10000));
    await a.release();
    const held = await lockCacheMount({ stateDir: s, def: def({ id: 'pip' }), buildId: 'b2' });
    const [m] = await listCacheMounts({ stateDir: s });
    assert.equal(m!.id, 'pip');
    assert.equal(m!.uses, 2);
    assert.deepEqual(m!.builds, ['b2', 'b1']);
    assert.ok(m!.size >= 10000);
    assert.equal(m!.inUse, true);
    await assert.rejects(removeCacheMounts({ stateDir: s, ids: ['pip'] }), (e: { code?: string }) => e.code === 'ERR_KILN_CACHE_MOUNT_IN_USE');
    await held.release();
    assert.deepEqual(await removeCacheMounts({ stateDir: s, ids: ['pip'] }), ['pip']);
    assert.deepEqual(await listCacheMounts({ stateDir: s }), []);
    await assert.rejects(removeCacheMounts({ stateDir: s, ids: ['pip'] }), (e: { code?: string }) => e.code === 'ERR_KILN_CACHE_MOUNT_NOT_FOUND');
  });
});
