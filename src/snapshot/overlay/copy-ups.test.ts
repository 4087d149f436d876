import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { dropCopyUps } from './copy-ups.js';

/** Folders at `rels` under both roots, the upper one with the lower one's times (what an overlay copy-up leaves). */
function copiedUp(lower: string, upper: string, rels: string[]): void {
  for (const rel of rels) {
    mkdirSync(path.join(lower, rel), { recursive: true });
    mkdirSync(path.join(upper, rel), { recursive: true });
  }
  // deepest first: setting a folder's times after its children were made
  for (const rel of [...rels].sort((a, b) => b.length - a.length)) {
    const st = statSync(path.join(lower, rel));
    utimesSync(path.join(upper, rel), st.atimeMs / 1000, st.mtimeMs / 1000);
  }
}

function opaque(dir: string): void {
  const r = spawnSync('setfattr', ['-n', 'trusted.overlay.opaque', '-v', 'y', dir], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
}

test('copy-ups go, nested ones with their parents; opaque folders stay with every folder above them; changed ones stay', (t) => {
  if (process.getuid?.() !== 0 || spawnSync('setfattr', ['--version']).status !== 0) {
    if (process.env.CI === 'true') assert.fail('needs root and setfattr (apt: attr)');
    t.skip('needs root and setfattr');
    return;
  }
  const tmp = mkdtempSync(path.join(tmpdir(), 'kiln-copyups-'));
  try {
    const lower = path.join(tmp, 'lower');
    const upper = path.join(tmp, 'upper');
    copiedUp(lower, upper, ['dev', 'etc', 'sys', 'a', 'a/b', 'a/b/c', 'o', 'o/p', 'q', 'q/r', 'with space', 'with space/x', 'kept']);
    opaque(path.join(upper, 'o/p'));
    opaque(path.join(upper, 'with space/x'));
    // a folder that holds a file, and one the lower layers do not have
    writeFileSync(path.join(upper, 'kept', 'file'), 'x');
    mkdirSync(path.join(upper, 'new'));
    // a folder whose mode changed
    spawnSync('chmod', ['0700', path.join(upper, 'q/r')]);
    const removed = dropCopyUps(upper, [lower]);
    assert.deepEqual([...removed].sort(), ['a', 'a/b', 'a/b/c', 'dev', 'etc', 'sys'].sort());
    for (const rel of ['o', 'o/p', 'with space', 'with space/x', 'kept', 'kept/file', 'new', 'q', 'q/r']) assert.ok(existsSync(path.join(upper, rel)), `${rel} was removed`);
    for (const rel of removed) assert.ok(!existsSync(path.join(upper, rel)), `${rel} is still there`);
    // nothing to look at: no getfattr, nothing removed
    assert.deepEqual(dropCopyUps(upper, [lower]), []);
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
});
