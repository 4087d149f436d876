import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { loadServerConfig } from './config.js';

test('--database, KILN_DATABASE and serve.database; the roles and their flags', (t) => {
  const root = mkdtempSync(path.join(tmpdir(), 'kiln-serve-config-'));
  t.after(() => rmSync(root, { recursive: true, force: true }));
  const none = loadServerConfig(root, {}, {});
  assert.deepEqual([none.database, none.workers, none.workerOnly, none.cacheRegistry, none.insecureRegistries], [undefined, 1, false, undefined, []], 'no database: one machine, as before');
  writeFileSync(path.join(root, 'config.json'), JSON.stringify({ serve: { database: 'postgres://file@h/db', cacheRegistry: 'reg:5000/kiln', workers: 3 } }));
  assert.equal(loadServerConfig(root, {}, {}).database, 'postgres://file@h/db');
  assert.equal(loadServerConfig(root, {}, {}).workers, 3);
  assert.equal(loadServerConfig(root, {}, { KILN_DATABASE: 'postgres://env@h/db' }).database, 'postgres://env@h/db', 'the environment over the file');
  const flags = loadServerConfig(root, { database: 'postgres://flag@h/db', workers: 0, cacheRegistry: 'other:5000/c' }, { KILN_DATABASE: 'postgres://env@h/db', KILN_CACHE_REGISTRY: 'env:1/x' });
  assert.deepEqual([flags.database, flags.workers, flags.cacheRegistry], ['postgres://flag@h/db', 0, 'other:5000/c'], 'flags over both');
  const worker = loadServerConfig(root, { worker: true, slots: 2 }, { KILN_INSECURE_REGISTRY: 'reg:5000, other:5000' });
  assert.deepEqual([worker.workerOnly, worker.workers, worker.insecureRegistries], [true, 2, ['reg:5000', 'other:5000']]);
  rmSync(path.join(root, 'config.json'));
  const refused: Array<[Parameters<typeof loadServerConfig>[1], RegExp]> = [
    [{ worker: true }, /--worker needs --database/],
    [{ workers: 2 }, /--workers needs --database/],
    [{ database: 'postgres://h/db', slots: 2 }, /--slots goes with --worker/],
    [{ database: 'postgres://h/db', cacheRegistry: 'reg:5000/kiln:v1' }, /without a tag or digest/],
  ];
  for (const [f, message] of refused) assert.throws(() => loadServerConfig(root, f, {}), (e: Error & { code?: string }) => e.code === 'ERR_KILN_ARGUMENT' && message.test(e.message));
});

test('--credentials-key-file or serve.credentialsKeyFile (relative to the root) is read at start', (t) => {
  const root = mkdtempSync(path.join(tmpdir(), 'kiln-serve-config-'));
  t.after(() => rmSync(root, { recursive: true, force: true }));
  assert.equal(loadServerConfig(root, {}, {}).credentialsKey, undefined);
  writeFileSync(path.join(root, 'key'), Buffer.alloc(32, 7));
  writeFileSync(path.join(root, 'config.json'), JSON.stringify({ serve: { credentialsKeyFile: 'key' } }));
  assert.deepEqual(loadServerConfig(root, {}, {}).credentialsKey, Buffer.alloc(32, 7));
  writeFileSync(path.join(root, 'other'), 'ab'.repeat(32));
  assert.deepEqual(loadServerConfig(root, { credentialsKeyFile: path.join(root, 'other') }, {}).credentialsKey, Buffer.alloc(32, 0xab), 'the flag over the file');
  assert.throws(() => loadServerConfig(root, { credentialsKeyFile: path.join(root, 'config.json') }, {}), (e: Error & { code?: string }) => e.code === 'ERR_KILN_SERVICE_CREDENTIALS');
});
