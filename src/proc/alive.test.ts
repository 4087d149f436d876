import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
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

test('a zombie (exited, not yet reaped by its parent) is not alive as an owner', async () => {
  // `sleep 3` (exec'd by sh) never waits for the background child, which stays a zombie while it runs
  const parent = spawn('sh', ['-c', 'sleep 0 & echo $!; exec sleep 3'], { stdio: ['ignore', 'pipe', 'ignore'] });
  const pid = Number(await new Promise<string>((resolve) => parent.stdout.once('data', (c: Buffer) => resolve(c.toString().trim()))));
  const deadline = Date.now() + 2000;
  while (Date.now() < deadline && !/\) Z /.test(readStat(pid))) await new Promise((r) => setTimeout(r, 20));
  assert.match(readStat(pid), /\) Z /, 'the child became a zombie');
  assert.equal(ownerAlive({ pid, startTime: processStartTime(pid)! }), false);
  parent.kill();
});

function readStat(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return '';
  }
}
