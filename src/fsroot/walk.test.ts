import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { lstatInRoot, mkdirAllInRoot, removeIfEmptyInRoot, resolveInRoot, setDirTimesInRoot } from './index.js';

function withDirs(fn: (root: string, host: string) => void | Promise<void>): Promise<void> {
  const base = fs.mkdtempSync(path.join(tmpdir(), 'kiln-fsroot-'));
  const root = path.join(base, 'root');
  const host = path.join(base, 'host');
  fs.mkdirSync(root);
  fs.mkdirSync(path.join(host, 'victim'), { recursive: true });
  fs.writeFileSync(path.join(host, 'empty'), '');
  fs.utimesSync(host, 1000, 1000);
  return Promise.resolve(fn(root, host)).finally(() => fs.rmSync(base, { recursive: true, force: true }));
}

test('a symlinked parent (absolute or ..) is never followed: nothing on the other side is removed or re-timed', () =>
  withDirs((root, host) => {
    fs.symlinkSync(host, path.join(root, 'x'));
    fs.mkdirSync(path.join(root, 'up'));
    fs.symlinkSync(path.relative(path.join(root, 'up'), host), path.join(root, 'up', 'rel'));
    for (const p of ['/x/victim', '/x/empty', 'up/rel/victim', 'up/rel/empty']) assert.equal(removeIfEmptyInRoot(root, p), false, p);
    assert.equal(setDirTimesInRoot({ root, inRoot: '/x', atimeMs: 5e12, mtimeMs: 5e12 }), false);
    assert.equal(setDirTimesInRoot({ root, inRoot: '/up/rel', atimeMs: 5e12, mtimeMs: 5e12 }), false);
    assert.equal(lstatInRoot(root, '/x/victim'), undefined);
    assert.throws(() => mkdirAllInRoot({ root, inRoot: '/x/new', mode: 0o755 }), /not a directory/);
    assert.deepEqual(fs.readdirSync(host).sort(), ['empty', 'victim']);
    assert.equal(fs.statSync(host).mtimeMs, 1000 * 1000);
  }));

test('inside the root the same calls work: empty stubs removed, content kept, times set, mkdir -p with mode', () =>
  withDirs((root) => {
    mkdirAllInRoot({ root, inRoot: '/a/b/c', mode: 0o755 });
    assert.equal(fs.statSync(path.join(root, 'a/b/c')).mode & 0o777, 0o755);
    fs.writeFileSync(path.join(root, 'a/b/f'), '');
    fs.writeFileSync(path.join(root, 'a/kept'), 'x');
    assert.equal(removeIfEmptyInRoot(root, '/a/b/c'), true);
    assert.equal(removeIfEmptyInRoot(root, '/a/b/f'), true);
    assert.equal(removeIfEmptyInRoot(root, '/a/kept'), false);
    assert.equal(removeIfEmptyInRoot(root, '/a'), false);
    assert.equal(setDirTimesInRoot({ root, inRoot: '/a/b', atimeMs: 2000, mtimeMs: 3000 }), true);
    assert.equal(fs.statSync(path.join(root, 'a/b')).mtimeMs, 3000);
    assert.equal(lstatInRoot(root, '/a/kept')?.size, 1);
  }));

test('the lexical resolver re-roots absolute link targets and clamps .. at the root', () =>
  withDirs(async (root, host) => {
    fs.mkdirSync(path.join(root, 'real'));
    fs.symlinkSync(host, path.join(root, 'abs'));
    fs.symlinkSync('../../../../..', path.join(root, 'real', 'up'));
    assert.equal(await resolveInRoot(root, '/abs/victim'), `${host}/victim`);
    assert.equal(await resolveInRoot(root, '/real/up/etc'), '/etc');
    assert.throws(() => removeIfEmptyInRoot(root, '/a/../b'), /not a resolved path/);
  }));
