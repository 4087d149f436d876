import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createOverlaySnapshotter, type SnapshotIndex } from './overlay-snapshotter.js';

function memoryIndex(): SnapshotIndex {
  const rows = new Map<number, { id: number; state: string }>();
  let next = 1;
  return {
    createSnapshot: () => {
      const id = next++;
      rows.set(id, { id, state: `preparing:${process.pid}` });
      return id;
    },
    commitSnapshot: (id) => void rows.set(id, { id, state: 'committed' }),
    getSnapshot: (id) => rows.get(id),
    listSnapshots: () => [...rows.values()],
    deleteSnapshot: (id) => void rows.delete(id),
  };
}

function mounted(mp: string): boolean {
  return readFileSync('/proc/self/mounts', 'utf8').split('\n').some((l) => l.split(' ')[1] === mp);
}

/** `count` committed lowers, the i-th holding the file f<i> (and its own version of `top`), mounted in one snapshot. */
async function mountChain(root: string, count: number): Promise<void> {
  const index = memoryIndex();
  const snaps = await createOverlaySnapshotter({ root, index });
  const lowers: number[] = [];
  for (let i = 0; i < count; i++) {
    const s = await snaps.create();
    writeFileSync(path.join(s.dir, `f${i}`), String(i));
    writeFileSync(path.join(s.dir, 'top'), String(i));
    index.commitSnapshot(await s.commit(), `sha256:${i}`);
    lowers.push(s.id);
  }
  const active = await snaps.prepare({ lowers });
  await active.mount();
  try {
    assert.ok(mounted(active.mountpoint));
    assert.equal(readdirSync(active.mountpoint).length, count + 1);
    // the last lower given is the top of the stack
    assert.equal(readFileSync(path.join(active.mountpoint, 'top'), 'utf8'), String(count - 1));
    writeFileSync(path.join(active.mountpoint, 'new'), 'x');
  } finally {
    await active.unmount();
  }
  assert.ok(!mounted(active.mountpoint));
  assert.deepEqual(readdirSync(active.upperDir), ['new']);
  await active.release();
  assert.ok(!existsSync(active.upperDir));
}

const needsRoot = (t: { skip(m: string): void }): boolean => {
  if (process.getuid?.() === 0) return false;
  if (process.env.CI === 'true') assert.fail('needs root and overlayfs');
  t.skip('needs root and overlayfs');
  return true;
};

test('overlay snapshots: a short chain mounts by mount(2); 150 lowers (over one option page) and a root with a comma still mount', async (t) => {
  if (needsRoot(t)) return;
  const tmp = mkdtempSync(path.join(tmpdir(), 'kiln-snapshots-'));
  try {
    await mountChain(path.join(tmp, 'short'), 3);
    await mountChain(path.join(tmp, 'long'), 150);
    await mountChain(path.join(tmp, 'odd,name:here'), 2);
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
});
