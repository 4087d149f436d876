import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, describe, test } from 'node:test';
import { createContextWatch, resolveSources, type ContextWatch, type ResolvedSources } from './index.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'kiln-watch-'));
const watches: Array<ContextWatch<ResolvedSources>> = [];
after(() => {
  for (const w of watches) w.close();
  fs.rmSync(tmp, { recursive: true, force: true });
});
let n = 0;

/** A context of `dirs` directories with `files` files each. */
function tree(dirs: number, files: number): string {
  const root = path.join(tmp, `c${n++}`);
  for (let d = 0; d < dirs; d++) {
    fs.mkdirSync(path.join(root, `d${d}`), { recursive: true });
    for (let f = 0; f < files; f++) fs.writeFileSync(path.join(root, `d${d}`, `f${f}.txt`), `dir ${d} file ${f}\n`);
  }
  return root;
}

function watch(extra: { maxDirs?: number; onDrop?: (root: string, reason: string) => void } = {}): ContextWatch<ResolvedSources> {
  const w = createContextWatch<ResolvedSources>({ cookieDir: path.join(tmp, `cookies-${n++}`), ...extra });
  watches.push(w);
  return w;
}

/** Past the racy window (entries changed this recently are never kept): not a timing assertion, only a wait. */
const settle = (): Promise<unknown> => sleep(120);

const statCache = (): { get(k: string): string | undefined; set(k: string, v: string): void } => {
  const m = new Map<string, string>();
  return { get: (k) => m.get(k), set: (k, v) => void m.set(k, v) };
};

/** What reaches the image and the key: everything but times and inode numbers. */
function content(r: ResolvedSources): unknown {
  return { digest: r.digest, entries: r.units.map((u) => u.entries.map((e) => [e.rel, e.type, e.perm, e.size, e.digest ?? '', e.linkTarget ?? '', e.statKey])) };
}

describe('watched context trees', () => {
  test('an unchanged tree is recalled without reading it; a touched file re-reads only its directory', async () => {
    const root = tree(20, 10);
    const w = watch();
    const cache = statCache();
    await settle();
    const a = await resolveSources({ root, sources: ['.'], watch: w, statCache: cache });
    assert.equal(a.recalled, false);
    assert.equal(a.entryCount, 20 * 10 + 20 + 1);
    const c0 = w.counters();
    assert.ok(c0.lstat >= a.entryCount, `the first walk reads every entry (${c0.lstat} lstat)`);
    assert.equal(c0.watchedDirs, 21);

    const b = await resolveSources({ root, sources: ['.'], watch: w, statCache: cache });
    assert.equal(b.recalled, true);
    assert.equal(b.digest, a.digest);
    assert.deepEqual([w.counters().lstat, w.counters().readdir], [c0.lstat, c0.readdir], 'nothing was read');

    execFileSync('touch', [path.join(root, 'd7', 'f3.txt')]);
    await settle();
    const c = await resolveSources({ root, sources: ['.'], watch: w, statCache: cache });
    assert.deepEqual([c.recalled, c.patched], [false, 1], 'only the touched file is read into the last result');
    assert.deepEqual(content(c), content(await resolveSources({ root, sources: ['.'] })));
    assert.equal(c.digest, a.digest, 'a touch is not a change of content');
    const lstats = w.counters().lstat - c0.lstat;
    assert.ok(lstats > 0 && lstats <= 3, `only the touched file and its directory are read again (${lstats} lstat)`);
    assert.equal(w.counters().readdir, c0.readdir, 'no directory is listed again');

    fs.appendFileSync(path.join(root, 'd7', 'f3.txt'), 'edited\n');
    await settle();
    const d = await resolveSources({ root, sources: ['.'], watch: w, statCache: cache });
    assert.deepEqual([d.patched, d.filesHashed], [1, 1]);
    assert.notEqual(d.digest, a.digest);
    assert.deepEqual(content(d), content(await resolveSources({ root, sources: ['.'] })));
    assert.equal((await resolveSources({ root, sources: ['.'], watch: w, statCache: cache })).recalled, true, 'the patched result is kept');
  });

  test('each kind of change is seen by the next resolution (compared with a plain walk)', async () => {
    const root = tree(4, 3);
    fs.mkdirSync(path.join(root, 'd1', 'deep', 'er'), { recursive: true });
    fs.writeFileSync(path.join(root, 'd1', 'deep', 'er', 'x.txt'), 'x');
    const w = watch();
    const cache = statCache();
    const plain = async (): Promise<ResolvedSources> => resolveSources({ root, sources: ['.'] });
    const changes: Array<[string, () => void]> = [
      ['add a file', () => fs.writeFileSync(path.join(root, 'd2', 'new.txt'), 'new')],
      ['edit bytes keeping size and mtime (touch -r)', () => {
        const f = path.join(root, 'd0', 'f1.txt');
        const ref = path.join(tmp, `ref-${n++}`);
        fs.writeFileSync(ref, '');
        execFileSync('touch', ['-r', f, ref]);
        const before = fs.statSync(f);
        fs.writeFileSync(f, 'DIR 0 FILE 1\n');
        execFileSync('touch', ['-r', ref, f]);
        const now = fs.statSync(f);
        assert.deepEqual([now.size, now.mtimeMs], [before.size, before.mtimeMs]);
      }],
      ['chmod a file', () => fs.chmodSync(path.join(root, 'd3', 'f0.txt'), 0o600)],
      ['chmod a directory', () => fs.chmodSync(path.join(root, 'd3'), 0o700)],
      ['rename a directory', () => fs.renameSync(path.join(root, 'd1'), path.join(root, 'd9'))],
      ['edit below the renamed directory', () => fs.writeFileSync(path.join(root, 'd9', 'deep', 'er', 'x.txt'), 'y')],
      ['delete a file', () => fs.rmSync(path.join(root, 'd2', 'f2.txt'))],
      ['replace a file with a symlink', () => {
        fs.rmSync(path.join(root, 'd0', 'f0.txt'));
        fs.symlinkSync('f1.txt', path.join(root, 'd0', 'f0.txt'));
      }],
      ['retarget the symlink', () => {
        fs.rmSync(path.join(root, 'd0', 'f0.txt'));
        fs.symlinkSync('f2.txt', path.join(root, 'd0', 'f0.txt'));
      }],
      ['replace a directory with a file', () => {
        fs.rmSync(path.join(root, 'd9', 'deep'), { recursive: true });
        fs.writeFileSync(path.join(root, 'd9', 'deep'), 'now a file');
      }],
    ];
    await settle();
    let last = await resolveSources({ root, sources: ['.'], watch: w, statCache: cache });
    for (const [what, change] of changes) {
      assert.equal((await resolveSources({ root, sources: ['.'], watch: w, statCache: cache })).recalled, true, `${what}: recalled before`);
      change();
      await settle();
      const r = await resolveSources({ root, sources: ['.'], watch: w, statCache: cache });
      assert.equal(r.recalled, false, what);
      if (/touch -r|chmod a file/.test(what)) assert.equal(r.patched, 1, `${what}: read into the last result`);
      assert.notEqual(r.digest, last.digest, what);
      assert.deepEqual(content(r), content(await plain()), what);
      last = r;
    }
  });

  test('a change made just before a resolution is seen (the cookie barrier), with no turn of the loop between', async () => {
    const root = tree(3, 3);
    const w = watch();
    await settle();
    await resolveSources({ root, sources: ['.'], watch: w });
    assert.equal((await resolveSources({ root, sources: ['.'], watch: w })).recalled, true);
    for (const [what, change] of [
      ['append', () => fs.appendFileSync(path.join(root, 'd1', 'f1.txt'), 'more')],
      ['new file', () => fs.writeFileSync(path.join(root, 'd2', 'g.txt'), 'g')],
      ['remove', () => fs.rmSync(path.join(root, 'd0', 'f0.txt'))],
    ] as const) {
      change();
      const r = await resolveSources({ root, sources: ['.'], watch: w });
      assert.equal(r.recalled, false, what);
      assert.deepEqual(content(r), content(await resolveSources({ root, sources: ['.'] })), what);
    }
  });

  test('a hard-linked file changed through its other name is read again', async () => {
    const root = tree(2, 1);
    fs.linkSync(path.join(root, 'd0', 'f0.txt'), path.join(root, 'd1', 'same.txt'));
    const w = watch();
    await settle();
    const a = await resolveSources({ root: path.join(root, 'd1'), sources: ['.'], watch: w });
    fs.writeFileSync(path.join(root, 'd0', 'f0.txt'), 'changed through the other name');
    await settle();
    const b = await resolveSources({ root: path.join(root, 'd1'), sources: ['.'], watch: w });
    assert.notEqual(b.digest, a.digest);
    assert.deepEqual(content(b), content(await resolveSources({ root: path.join(root, 'd1'), sources: ['.'] })));
  });

  test('recently changed files are not recalled; ignore rules and options key results apart', async () => {
    const root = tree(2, 2);
    const w = watch();
    await settle();
    fs.writeFileSync(path.join(root, 'd0', 'f0.txt'), 'fresh');
    const a = await resolveSources({ root, sources: ['.'], watch: w });
    assert.equal((await resolveSources({ root, sources: ['.'], watch: w })).recalled, false, 'a racy entry is never kept');
    await settle();
    await resolveSources({ root, sources: ['.'], watch: w });
    assert.equal((await resolveSources({ root, sources: ['.'], watch: w })).recalled, true);
    const ignored = await resolveSources({ root, sources: ['.'], watch: w, isIgnored: (rel) => rel.startsWith('d1'), ignoreKey: '["d1"]' });
    assert.equal(ignored.recalled, false);
    assert.notEqual(ignored.digest, a.digest);
    const unnamed = await resolveSources({ root, sources: ['.'], watch: w, isIgnored: () => false });
    assert.equal((await resolveSources({ root, sources: ['.'], watch: w, isIgnored: () => false })).recalled, false, 'unnamed rules: never recalled');
    assert.equal(unnamed.recalled, false);
    assert.equal((await resolveSources({ root, sources: ['d0'], watch: w })).recalled, false);
  });

  test('a tree with too many directories is given up and walked', async () => {
    const root = tree(6, 1);
    const drops: string[] = [];
    const w = watch({ maxDirs: 3, onDrop: (_r, reason) => drops.push(reason) });
    await settle();
    const a = await resolveSources({ root, sources: ['.'], watch: w });
    const b = await resolveSources({ root, sources: ['.'], watch: w });
    assert.deepEqual([a.recalled, b.recalled], [false, false]);
    assert.match(drops.join(), /more than 3 directories/);
    fs.writeFileSync(path.join(root, 'd5', 'f0.txt'), 'changed');
    assert.deepEqual(content(await resolveSources({ root, sources: ['.'], watch: w })), content(await resolveSources({ root, sources: ['.'] })));
    assert.equal(w.counters().watchedDirs, 0);
  });
});
