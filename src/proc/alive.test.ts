import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync, spawn } from 'node:child_process';
import { ownerAlive, pidAlive, processStartTime } from './alive.js';

test('a running process is alive, with a start time; an exited one is not', async () => {
  assert.equal(pidAlive(process.pid), true);
  const start = processStartTime(process.pid);
  assert.match(start ?? '', /^\d+$/);
  assert.equal(ownerAlive({ pid: process.pid, startTime: start! }), true);
  assert.equal(ownerAlive({ pid: process.pid, startTime: '' }), true);
  // the same pid with another start time is a reused pid: not the owner
  assert.equal(ownerAlive({ pid: process.pid, startTime: String(Number(start) + 1) }), false);
  const child = spawn(process.execPath, ['-e', '']);
  const pid = child.pid!;
  await new Promise((resolve) => child.on('exit', resolve));
  spawnSync('true'); // let the kernel reap it
  assert.equal(pidAlive(pid), false);
  assert.equal(processStartTime(pid), undefined);
  for (const bad of [0, -1, 1.5, Number.NaN]) assert.equal(pidAlive(bad), false);
});
