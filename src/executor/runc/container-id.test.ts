import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { isOwnerAlive, newContainerId, parseContainerId, processStartTime } from './container-id.js';

test('ids are unique, runc-safe and name their owner', () => {
  const ids = new Set(Array.from({ length: 1000 }, () => newContainerId()));
  assert.equal(ids.size, 1000);
  const id = [...ids][0];
  assert.match(id, /^[\w+\-.]+$/);
  const owner = parseContainerId(id);
  assert.deepEqual(owner, { pid: process.pid, startTime: processStartTime(process.pid) });
  assert.equal(isOwnerAlive(owner!), true);
});

test('owners that exited, or whose pid was reused, are dead', () => {
  const pid = spawnSync('true').pid!;
  assert.equal(isOwnerAlive({ pid, startTime: '1' }), false);
  assert.equal(isOwnerAlive({ pid: process.pid, startTime: '1' }), false);
});

test('foreign ids are not parsed', () => {
  assert.equal(parseContainerId('buildkit-abc'), undefined);
  assert.equal(parseContainerId('kiln-12-x-ab'), undefined);
});
