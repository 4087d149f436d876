import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, test, type TestContext } from 'node:test';
import { createLocalStore } from '../store/index.js';
import { writeLayer } from './index.js';

function tmp(t: TestContext): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kiln-content-id-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** A small tree: files, a folder, a symlink, a hardlink and a user xattr. */
function makeTree(root: string, opts: { text?: string; mode?: number } = {}): void {
  fs.mkdirSync(path.join(root, 'app/lib'), { recursive: true });
  fs.writeFileSync(path.join(root, 'app/main.py'), opts.text ?? 'print("hi")\n');
  fs.chmodSync(path.join(root, 'app/main.py'), opts.mode ?? 0o644);
  fs.writeFileSync(path.join(root, 'app/lib/big.bin'), Buffer.alloc(600_000, 7));
  fs.linkSync(path.join(root, 'app/lib/big.bin'), path.join(root, 'app/lib/big-alias.bin'));
  fs.symlinkSync('main.py', path.join(root, 'app/entry'));
  execFileSync('setfattr', ['-n', 'user.tag', '-v', 'one', path.join(root, 'app/main.py')]);
}

function touchAll(root: string, seconds: number): void {
  const all = [root, ...(fs.readdirSync(root, { recursive: true }) as string[]).map((e) => path.join(root, e))];
  for (const p of all.reverse()) fs.lutimesSync(p, seconds, seconds);
}

describe('writeLayer contentId', () => {
  test('same files written at another time: diffId differs, contentId is the same', async (t) => {
    const dir = tmp(t);
    const store = await createLocalStore({ root: path.join(dir, 'store') });
    const a = path.join(dir, 'a');
    const b = path.join(dir, 'b');
    makeTree(a);
    makeTree(b);
    touchAll(a, 1_600_000_000);
    touchAll(b, 1_700_000_000);
    const la = await writeLayer({ dir: a, ingester: store });
    const lb = await writeLayer({ dir: b, ingester: store });
    assert.notEqual(la.diffId, lb.diffId, 'the tars differ (mtimes are in the tar)');
    assert.equal(la.contentId, lb.contentId);
    assert.match(la.contentId, /^sha256:[0-9a-f]{64}$/);
  });

  test('a byte, a mode bit, an owner, a link target or an xattr changes the contentId', async (t) => {
    const dir = tmp(t);
    const store = await createLocalStore({ root: path.join(dir, 'store') });
    const base = path.join(dir, 'base');
    makeTree(base);
    const ref = (await writeLayer({ dir: base, ingester: store })).contentId;
    const variant = async (name: string, change: (root: string) => void): Promise<string> => {
      const root = path.join(dir, name);
      makeTree(root);
      change(root);
      return (await writeLayer({ dir: root, ingester: store })).contentId;
    };
    const seen = new Set([ref]);
    const ids = [
      await variant('bytes', (r) => fs.writeFileSync(path.join(r, 'app/main.py'), 'print("ho")\n')),
      await variant('mode', (r) => fs.chmodSync(path.join(r, 'app/main.py'), 0o755)),
      await variant('owner', (r) => fs.lchownSync(path.join(r, 'app/main.py'), 1000, 1000)),
      await variant('link', (r) => {
        fs.unlinkSync(path.join(r, 'app/entry'));
        fs.symlinkSync('lib/big.bin', path.join(r, 'app/entry'));
      }),
      await variant('xattr', (r) => execFileSync('setfattr', ['-n', 'user.tag', '-v', 'two', path.join(r, 'app/main.py')])),
      await variant('big-bytes', (r) => {
        const f = path.join(r, 'app/lib/big.bin');
        const buf = fs.readFileSync(f);
        buf[599_999] = 8;
        fs.writeFileSync(f, buf);
      }),
    ];
    for (const id of ids) {
      assert.equal(seen.has(id), false, 'each change gives a new contentId');
      seen.add(id);
    }
  });
});
