import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import { createPatternMatcher, parseIgnoreFile, readIgnorePatterns, resolveSources, walkContext } from './index.js';

const tmpRoot = mkdtempSync(path.join(os.tmpdir(), 'kiln-context-'));
after(() => rmSync(tmpRoot, { recursive: true, force: true }));
const code = (c: string) => (err: unknown) => (err as { code?: string }).code === c;

test('parseIgnoreFile: BOM, CRLF, comments only in column 1, `!` with spaces, leading slash', () => {
  const text = '\uFEFF# comment\r\n # not a comment\r\n/abs/./x/\r\n!  /keep//this\r\n\r\n   \r\nlast';
  assert.deepEqual(parseIgnoreFile(text), ['# not a comment', 'abs/x', '!keep/this', 'last']);
});

test('readIgnorePatterns prefers <Dockerfile>.dockerignore next to the Dockerfile', async () => {
  const ctx = mkdtempSync(path.join(tmpRoot, 'ign-'));
  mkdirSync(path.join(ctx, 'build'));
  writeFileSync(path.join(ctx, '.dockerignore'), 'generic\n');
  const dockerfilePath = path.join(ctx, 'build', 'app.Dockerfile');
  writeFileSync(dockerfilePath, 'FROM scratch\n');
  assert.deepEqual(await readIgnorePatterns({ contextDir: ctx, dockerfilePath }), ['generic']);
  writeFileSync(`${dockerfilePath}.dockerignore`, 'specific\n');
  assert.deepEqual(await readIgnorePatterns({ contextDir: ctx, dockerfilePath }), ['specific']);
  assert.deepEqual(await readIgnorePatterns({ contextDir: ctx }), ['generic']);
});

test('invalid patterns are BuildErrors with ERR_KILN_IGNORE_PATTERN naming the pattern', () => {
  assert.throws(() => createPatternMatcher(['ok', 'a[']), (err: Error & { code?: string }) =>
    err.code === 'ERR_KILN_IGNORE_PATTERN' && err.message.includes('a['));
  assert.throws(() => createPatternMatcher(['[z-a]']), code('ERR_KILN_IGNORE_PATTERN'));
});

test('matcher: regexp characters are literal, escapes are literal, classes follow filepath.Match', () => {
  assert.equal(createPatternMatcher(['c++/*.o']).matches('c++/x.o'), true);
  assert.equal(createPatternMatcher(['x|y']).matches('x'), false);
  assert.equal(createPatternMatcher(['a\\d*']).matches('ad1'), true);
  assert.equal(createPatternMatcher(['a\\d*']).matches('a1'), false);
  assert.equal(createPatternMatcher(['[*]?']).matches('*x'), true);
  assert.equal(createPatternMatcher(['./docs/']).matches('./docs/a'), true, 'paths are cleaned too');
});

test('mayMatchBelow follows fsutil: literal exception prefixes, or always when an exception has globs', () => {
  const m = createPatternMatcher(['node_modules', '!node_modules/keep/x']);
  assert.equal(m.mayMatchBelow('node_modules'), true);
  assert.equal(m.mayMatchBelow('node_modules/other'), false);
  assert.equal(createPatternMatcher(['a']).mayMatchBelow('a'), false);
  assert.equal(createPatternMatcher(['a', '!**/*.md']).mayMatchBelow('a/b'), true);
});

test('walkContext yields full lstat data and link targets; missing root and abort are errors', async () => {
  const ctx = mkdtempSync(path.join(tmpRoot, 'walk-'));
  writeFileSync(path.join(ctx, 'f'), 'abc', { mode: 0o640 });
  symlinkSync('f', path.join(ctx, 'l'));
  const entries = await walkContext({ dir: ctx });
  assert.deepEqual(entries.map((e) => [e.path, e.type]), [['f', 'file'], ['l', 'symlink']]);
  assert.equal(entries[0].mode & 0o7777, 0o640);
  assert.equal(entries[0].mode & 0o170000, 0o100000);
  assert.equal(entries[0].size, 3);
  assert.equal(entries[1].linkTarget, 'f');
  await assert.rejects(walkContext({ dir: path.join(ctx, 'nope') }), code('ERR_KILN_CONTEXT_NOT_FOUND'));
  await assert.rejects(walkContext({ dir: ctx, excludePatterns: ['!'] }), code('ERR_KILN_IGNORE_PATTERN'));
  const ac = new AbortController();
  ac.abort();
  await assert.rejects(walkContext({ dir: ctx, signal: ac.signal }), { name: 'AbortError' });
});

test('20,000 files: walk is fast and a warm-cache resolution reads no bytes', async () => {
  const ctx = mkdtempSync(path.join(tmpRoot, 'big-'));
  for (let d = 0; d < 100; d++) {
    mkdirSync(path.join(ctx, `d${d}`));
    for (let f = 0; f < 200; f++) writeFileSync(path.join(ctx, `d${d}`, `f${f}`), `${d}/${f}`);
  }
  await new Promise((r) => setTimeout(r, 80));
  let t = performance.now();
  const entries = await walkContext({ dir: ctx, excludePatterns: ['d1*', '!d1/f1'] });
  const walkMs = performance.now() - t;
  assert.equal(entries.length, 20100 - 11 * 201 + 2);
  console.log(`# walk of 20,000 files took ${walkMs.toFixed(0)} ms`);
  const map = new Map<string, string>();
  const cache = { get: (k: string) => map.get(k), set: (k: string, v: string) => void map.set(k, v) };
  t = performance.now();
  const cold = await resolveSources({ root: ctx, sources: ['.'], statCache: cache });
  const coldMs = performance.now() - t;
  assert.equal(cold.filesHashed, 20000);
  console.log(`# cold checksum took ${coldMs.toFixed(0)} ms`);
  const warm = await resolveSources({ root: ctx, sources: ['.'], statCache: cache });
  assert.equal(warm.bytesRead, 0);
  assert.equal(warm.digest, cold.digest);
});
