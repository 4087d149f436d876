import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import { resolveInside } from './index.js';

const root = mkdtempSync(path.join(os.tmpdir(), 'kiln-resolve-'));
after(() => rmSync(root, { recursive: true, force: true }));
mkdirSync(path.join(root, 'real/sub'), { recursive: true });
writeFileSync(path.join(root, 'real/sub/f'), 'x');
symlinkSync('real', path.join(root, 'dirlink'));
symlinkSync('/real/sub', path.join(root, 'abslink'));
symlinkSync('../../..', path.join(root, 'real/up'));
symlinkSync('sub/f', path.join(root, 'real/flink'));
symlinkSync('loop2', path.join(root, 'loop1'));
symlinkSync('loop1', path.join(root, 'loop2'));

const code = (c: string) => (err: unknown) => (err as { code?: string }).code === c;

test('lexical joins stay inside, `..` above the root throws', () => {
  assert.equal(resolveInside(root, 'real/sub/f'), path.join(root, 'real/sub/f'));
  assert.equal(resolveInside(root, '/real/./sub/../sub/f'), path.join(root, 'real/sub/f'));
  assert.equal(resolveInside(root, '.'), root);
  assert.throws(() => resolveInside(root, '../x'), code('ERR_KILN_CONTEXT_ESCAPE'));
  assert.throws(() => resolveInside(root, 'real/../../x'), code('ERR_KILN_CONTEXT_ESCAPE'));
});

test('symlinked parents are resolved inside the root; absolute targets count from the root', () => {
  assert.equal(resolveInside(root, 'dirlink/sub/f'), path.join(root, 'real/sub/f'));
  assert.equal(resolveInside(root, 'abslink/f'), path.join(root, 'real/sub/f'));
  assert.equal(resolveInside(root, 'dirlink/missing/x'), path.join(root, 'real/missing/x'));
});

test('the last component is followed only with followSymlinks', () => {
  assert.equal(resolveInside(root, 'real/flink'), path.join(root, 'real/flink'));
  assert.equal(resolveInside(root, 'real/flink', { followSymlinks: true }), path.join(root, 'real/sub/f'));
});

test('a symlink that climbs out of the root throws ERR_KILN_CONTEXT_ESCAPE', () => {
  assert.throws(() => resolveInside(root, 'real/up/etc'), code('ERR_KILN_CONTEXT_ESCAPE'));
  assert.throws(() => resolveInside(root, 'real/up', { followSymlinks: true }), code('ERR_KILN_CONTEXT_ESCAPE'));
  assert.equal(resolveInside(root, 'real/up'), path.join(root, 'real/up'), 'not followed, so not an escape');
});

test('a symlink loop is an error, not a hang', () => {
  assert.throws(() => resolveInside(root, 'loop1/x'), code('ERR_KILN_CONTEXT_NOT_FOUND'));
});
