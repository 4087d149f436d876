import { test } from 'node:test';
import assert from 'node:assert/strict';
import { restoreHeldCaCerts, trustHeldCaCerts } from './trust.js';

const DISPATCHER = Symbol.for('undici.globalDispatcher.1');

// first: the other test holds a file for the rest of this process
test('with nothing held, fetch keeps the dispatcher it had', async () => {
  const before = (globalThis as Record<symbol, unknown>)[DISPATCHER];
  await trustHeldCaCerts();
  assert.equal((globalThis as Record<symbol, unknown>)[DISPATCHER], before);
});

test('the held variable goes back as NODE_EXTRA_CA_CERTS and leaves the environment children see', () => {
  const env: NodeJS.ProcessEnv = { KILN_HELD_EXTRA_CA_CERTS: '/etc/ssl/extra.pem', PATH: '/bin' };
  restoreHeldCaCerts(env);
  assert.deepEqual(env, { NODE_EXTRA_CA_CERTS: '/etc/ssl/extra.pem', PATH: '/bin' });
  // a value set since (by whoever started this process) is not overwritten
  const both: NodeJS.ProcessEnv = { KILN_HELD_EXTRA_CA_CERTS: '/a.pem', NODE_EXTRA_CA_CERTS: '/b.pem' };
  restoreHeldCaCerts(both);
  assert.deepEqual(both, { NODE_EXTRA_CA_CERTS: '/b.pem' });
  const none: NodeJS.ProcessEnv = { PATH: '/bin' };
  restoreHeldCaCerts(none);
  assert.deepEqual(none, { PATH: '/bin' });
});
