/**
 * `kiln build --verify` (issue 10, item 5): every cache hit rebuilt from scratch and compared file by file. An honest
 * rebuild verifies every hit; a cache whose record was pointed at another step's layer is reported as a stale hit
 * (step, path, field) and the build exits non-zero; a step that does not reproduce itself is reported as
 * nondeterministic, not stale.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { build, cleanup, newContext, newRoot, requireIntegration } from '../helpers/kiln.js';

describe('kiln build --verify', () => {
  test('an honest rebuild: every hit verified, nothing left in the scratch root', async (t) => {
    if (!requireIntegration(t)) return;
    const ctx = await newContext({
      Dockerfile: 'FROM busybox:latest\nCOPY d /d\nRUN echo built > /built && ln /built /built.link\nCOPY f /f\n',
      'd/a': 'a\n',
      'd/sub/b': 'b\n',
      f: 'f\n',
    });
    fs.symlinkSync('a', path.join(ctx, 'd/l'));
    const root = await newRoot();
    t.after(() => cleanup(ctx, root));
    const first = await build(root, ctx);
    assert.equal(first.code, 0, first.stderr);
    const second = await build(root, ctx, ['--verify']);
    assert.equal(second.code, 0, second.stderr);
    const steps = second.meta['kiln.steps'];
    assert.ok(steps.every((s) => s.cached), JSON.stringify(steps));
    assert.match(second.stderr, new RegExp(`verify: ${steps.length} of ${steps.length} cache hits verified\\n`));
    assert.doesNotMatch(second.stderr, /STALE/);
    assert.deepEqual(fs.readdirSync(path.join(root, 'tmp')).filter((n) => n.startsWith('verify-')), []);
  });

  test('a tampered cache record (pointing at another step\'s layer) is a stale hit and fails the build', async (t) => {
    if (!requireIntegration(t)) return;
    const ctx = await newContext({ Dockerfile: 'FROM busybox:latest\nRUN echo one > /one\nRUN echo two > /two\n' });
    const root = await newRoot();
    t.after(() => cleanup(ctx, root));
    const first = await build(root, ctx);
    assert.equal(first.code, 0, first.stderr);
    const db = new Database(path.join(root, 'metadata.db'));
    try {
      const rows = db.prepare('SELECT key, name, diff_id FROM cache').all() as Array<{ key: string; name: string; diff_id: string }>;
      const one = rows.find((r) => r.name.includes('echo one'))!;
      const two = rows.find((r) => r.name.includes('echo two'))!;
      assert.ok(one && two && one.diff_id !== two.diff_id);
      db.prepare('UPDATE cache SET diff_id = ? WHERE key = ?').run(two.diff_id, one.key);
    } finally {
      db.close();
    }
    const plain = await build(root, ctx);
    assert.equal(plain.code, 0, 'without --verify the tampered hit goes unnoticed');
    const checked = await build(root, ctx, ['--verify']);
    assert.notEqual(checked.code, 0, checked.stderr);
    assert.match(checked.stderr, /verify: STALE HIT \[[^\]]*\] RUN echo one > \/one: (one|two): presence/);
    assert.match(checked.stderr, /stale cache hit/);
    assert.match(checked.stderr, /verify: 1 of \d+ cache hits are stale/);
  });

  test('a nondeterministic step is reported as such, naming the path, and is not a stale hit', async (t) => {
    if (!requireIntegration(t)) return;
    const ctx = await newContext({ Dockerfile: 'FROM busybox:latest\nRUN head -c 16 /dev/urandom > /random && echo same > /stable\n' });
    const root = await newRoot();
    t.after(() => cleanup(ctx, root));
    assert.equal((await build(root, ctx)).code, 0);
    const r = await build(root, ctx, ['--verify']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /verify: nondeterministic step .*RUN head -c 16.*: random: content/);
    assert.doesNotMatch(r.stderr, /: stable: /);
    assert.doesNotMatch(r.stderr, /STALE/);
    assert.match(r.stderr, /1 nondeterministic/);
  });
});
