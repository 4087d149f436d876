import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const tsc = path.join(repoRoot, 'node_modules', 'typescript', 'bin', 'tsc');

function typecheck(project: string): { code: number; out: string } {
  const r = spawnSync(process.execPath, [tsc, '-p', project, '--noEmit'], { cwd: repoRoot, encoding: 'utf8' });
  return { code: r.status ?? -1, out: `${r.stdout}${r.stderr}` };
}

describe('SDK types (tsc --noEmit against the built package)', () => {
  test('the package is built, so `kiln` resolves to dist/api/index.d.ts', () => {
    assert.ok(existsSync(path.join(repoRoot, 'dist', 'api', 'index.d.ts')), 'run `npm run build` first');
  });

  test('misuses are type errors (each @ts-expect-error fails to compile) and proper use compiles', () => {
    const r = typecheck('test/types');
    assert.equal(r.code, 0, r.out);
  });

  test('the examples type-check with strict settings', () => {
    const r = typecheck('examples');
    assert.equal(r.code, 0, r.out);
  });
});
