import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BuildQueue } from './queue.js';

function gate(): { promise: Promise<void>; open: () => void } {
  let open!: () => void;
  const promise = new Promise<void>((r) => (open = r));
  return { promise, open };
}

test('the queue runs at most its limit at once, in submission order, and at most each team\'s limit per team', async () => {
  const q = new BuildQueue(2);
  const started: string[] = [];
  const gates = new Map<string, ReturnType<typeof gate>>();
  const submit = (id: string, teamId: string, teamLimit: number): void => {
    const g = gate();
    gates.set(id, g);
    q.submit({ id, teamId, teamLimit, run: async () => { started.push(id); await g.promise; } });
  };
  submit('a1', 'a', 1);
  submit('a2', 'a', 1); // team a is at its limit: waits, without holding back team b
  submit('b1', 'b', 2);
  submit('b2', 'b', 2);
  assert.deepEqual(started, ['a1', 'b1']);
  assert.equal(q.active, 2);
  assert.equal(q.queued, 2);
  assert.equal(q.remove('b2'), true, 'a queued job can be taken out (cancel)');
  assert.equal(q.remove('b1'), false, 'a running one cannot');
  gates.get('a1')!.open();
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(started, ['a1', 'b1', 'a2']);
  gates.get('b1')!.open();
  gates.get('a2')!.open();
  await q.drained();
  assert.equal(q.active, 0);
  assert.equal(q.queued, 0);
});
