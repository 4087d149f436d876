import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { isNotFound } from '../../errors/index.js';
import { copyInto, normalizeDest } from './copy-into.js';
import { createPatternMatcher } from '../../context/index.js';
import type { CopyRequest } from './types.js';

const isRoot = process.getuid?.() === 0;
const base = fs.mkdtempSync(path.join(os.tmpdir(), 'kiln-copy-'));
after(() => fs.rmSync(base, { recursive: true, force: true }));
let n = 0;

type Spec = Record<string, string | { dir: true; mode?: number } | { link: string } | { file: string; mode?: number; mtime?: number }>;

function tree(spec: Spec): string {
  const root = path.join(base, `t${n++}`);
  fs.mkdirSync(root);
  for (const [rel, v] of Object.entries(spec)) {
    const p = path.join(root, rel);
    fs.mkdirSync(path.dirname(p), { recursive: true });
    if (typeof v === 'string') fs.writeFileSync(p, v);
    else if ('dir' in v) {
      fs.mkdirSync(p, { recursive: true });
      if (v.mode !== undefined) fs.chmodSync(p, v.mode);
    } else if ('link' in v) fs.symlinkSync(v.link, p);
    else {
      fs.writeFileSync(p, v.file);
      if (v.mode !== undefined) fs.chmodSync(p, v.mode);
      if (v.mtime !== undefined) fs.utimesSync(p, v.mtime, v.mtime);
    }
  }
  return root;
}

async function copy(src: string, req: Partial<CopyRequest> & { sources: string[]; dest: string }, dest?: string): Promise<string> {
  const destRoot = dest ?? tree({});
  await copyInto({ srcRoot: src, destRoot, workdir: '/', ...req });
  return destRoot;
}

function list(root: string): string[] {
  const out: string[] = [];
  const walk = (rel: string): void => {
    for (const name of fs.readdirSync(path.join(root, rel)).sort()) {
      const r = rel ? `${rel}/${name}` : name;
      const st = fs.lstatSync(path.join(root, r));
      out.push(st.isDirectory() ? `${r}/` : st.isSymbolicLink() ? `${r} -> ${fs.readlinkSync(path.join(root, r))}` : r);
      if (st.isDirectory()) walk(r);
    }
  };
  walk('');
  return out;
}

const read = (root: string, rel: string): string => fs.readFileSync(path.join(root, rel), 'utf8');
const stat = (root: string, rel: string): fs.Stats => fs.lstatSync(path.join(root, rel));

describe('copyInto: sources and destinations', () => {
  test('a directory source copies its contents, not the directory', async () => {
    const src = tree({ 'dir/a.txt': 'A', 'dir/sub/b.txt': 'B' });
    const dst = await copy(src, { sources: ['dir'], dest: '/out' });
    assert.deepEqual(list(dst), ['out/', 'out/a.txt', 'out/sub/', 'out/sub/b.txt']);
  });

  test('a file goes inside a dest ending in /, inside an existing directory, else becomes dest', async () => {
    const src = tree({ 'f.txt': 'F' });
    const d1 = await copy(src, { sources: ['f.txt'], dest: '/new/dir/' });
    assert.equal(read(d1, 'new/dir/f.txt'), 'F');
    const d2 = tree({ existing: { dir: true } });
    await copy(src, { sources: ['f.txt'], dest: '/existing' }, d2);
    assert.equal(read(d2, 'existing/f.txt'), 'F');
    const d3 = await copy(src, { sources: ['f.txt'], dest: '/renamed' });
    assert.equal(read(d3, 'renamed'), 'F');
    assert.ok(stat(d3, 'renamed').isFile());
  });

  test('more than one source needs a directory dest', async () => {
    const src = tree({ a: '1', b: '2' });
    await assert.rejects(copy(src, { sources: ['a', 'b'], dest: '/x' }), /more than one source file, the destination must be a directory and end with a \//);
    const dst = await copy(src, { sources: ['a', 'b'], dest: '/x/' });
    assert.deepEqual(list(dst), ['x/', 'x/a', 'x/b']);
    const existing = tree({ y: { dir: true } });
    await copy(src, { sources: ['a', 'b'], dest: '/y' }, existing);
    assert.deepEqual(list(existing), ['y/', 'y/a', 'y/b']);
  });

  test('a relative dest is joined with the workdir; "." is the workdir', async () => {
    const src = tree({ f: 'x' });
    const dst = await copy(src, { sources: ['f'], dest: 'rel/', workdir: '/app' });
    assert.equal(read(dst, 'app/rel/f'), 'x');
    const dst2 = await copy(src, { sources: ['f'], dest: '.', workdir: '/w' });
    assert.equal(read(dst2, 'w/f'), 'x');
    assert.equal(normalizeDest('.', '/w'), '/w/');
    assert.equal(normalizeDest('a/./', '/w'), '/w/a/');
    assert.equal(normalizeDest('/x/.', '/w'), '/x/.');
    assert.equal(normalizeDest('../../..', '/w'), '/');
  });

  test('wildcards: Go filepath.Match per component, directories matched copy their contents', async () => {
    const src = tree({ 'a.txt': 'a', 'b.txt': 'b', 'c.md': 'c', 'dir1/x.txt': 'x', 'dir2/y.txt': 'y', 'dir1/deep/z.txt': 'z' });
    const dst = await copy(src, { sources: ['*.txt', 'dir*'], dest: '/o/' });
    assert.deepEqual(list(dst), ['o/', 'o/a.txt', 'o/b.txt', 'o/deep/', 'o/deep/z.txt', 'o/x.txt', 'o/y.txt']);
    const dst2 = await copy(src, { sources: ['*/*.txt'], dest: '/p/' });
    assert.deepEqual(list(dst2), ['p/', 'p/x.txt', 'p/y.txt']);
  });

  test('a wildcard that matches nothing: fine next to other matches, an error when nothing at all matched', async () => {
    const src = tree({ 'a.txt': 'a', 'empty/keep': '' });
    const dst = await copy(src, { sources: ['a.txt', 'missing*'], dest: '/o/' });
    assert.deepEqual(list(dst), ['o/', 'o/a.txt']);
    await assert.rejects(copy(src, { sources: ['missing*'], dest: '/o/' }), (e: unknown) =>
      isNotFound(e) && /no source files were specified.*missing\*/.test((e as Error).message));
  });

  test('a named source that does not exist is ERR_KILN_CONTEXT_NOT_FOUND naming it', async () => {
    const src = tree({ 'a.txt': 'a' });
    await assert.rejects(copy(src, { sources: ['a.txt', 'nope.txt'], dest: '/o/' }), (e: unknown) => {
      assert.equal((e as { code?: string }).code, 'ERR_KILN_CONTEXT_NOT_FOUND');
      assert.match((e as Error).message, /nope\.txt/);
      return true;
    });
    await assert.rejects(copy(src, { sources: ['nodir/*.txt'], dest: '/o/' }), isNotFound);
  });

  test("'..' and absolute symlinks cannot leave the source root", async () => {
    const src = tree({ 'etc/passwd': 'inside', 'up': { link: '/etc/passwd' }, 'rel': { link: '../../../../../etc/passwd' } });
    const dst = await copy(src, { sources: ['../../../etc/passwd', 'up', 'rel'], dest: '/o/' });
    assert.equal(read(dst, 'o/passwd'), 'inside');
    assert.equal(read(dst, 'o/up'), 'inside');
    assert.equal(read(dst, 'o/rel'), 'inside');
  });

  test('escaped wildcard characters match literally', async () => {
    const src = tree({ 'app/n?pe/f': 'literal', 'app/nope/f': 'other', 'app/[x]/f': 'bracket' });
    const dst = await copy(src, { sources: ['app/[[]x]/f'], dest: '/b' });
    assert.equal(read(dst, 'b'), 'bracket');
    const dst2 = await copy(src, { sources: ['app/n[?]pe/f'], dest: '/q' });
    assert.equal(read(dst2, 'q'), 'literal');
    // a backslash that reaches copyInto makes the word literal (no wildcard), as in BuildKit
    await assert.rejects(copy(src, { sources: ['app/n\\?pe/f'], dest: '/q' }), isNotFound);
  });
});

describe('copyInto: metadata', () => {
  test('mode bits and mtime are kept; directories merge; existing dest dir keeps its mode', async () => {
    const src = tree({ 'd/run.sh': { file: '#!', mode: 0o750, mtime: 1485449953 }, 'd/sub': { dir: true, mode: 0o700 } });
    fs.utimesSync(path.join(src, 'd/sub'), 1000, 1000);
    const dst = tree({ out: { dir: true, mode: 0o711 } });
    await copy(src, { sources: ['d'], dest: '/out' }, dst);
    assert.equal(stat(dst, 'out/run.sh').mode & 0o7777, 0o750);
    assert.equal(Math.floor(stat(dst, 'out/run.sh').mtimeMs / 1000), 1485449953);
    assert.equal(stat(dst, 'out/sub').mode & 0o7777, 0o700);
    assert.equal(Math.floor(stat(dst, 'out/sub').mtimeMs / 1000), 1000);
    assert.equal(stat(dst, 'out').mode & 0o7777, 0o711);
  });

  test('missing parents are created 0755; a copied directory into a new dest gets 0755', async () => {
    const src = tree({ 'd/f': 'x', 'd': { dir: true, mode: 0o700 } });
    const dst = await copy(src, { sources: ['d'], dest: '/a/b/c' });
    for (const p of ['a', 'a/b', 'a/b/c']) assert.equal(stat(dst, p).mode & 0o7777, 0o755, p);
  });

  test('symlinks inside a directory stay symlinks; a named symlink source is followed', async () => {
    const src = tree({ 'd/target': 'T', 'd/link': { link: 'target' }, 'd/abs': { link: '/nowhere' }, top: { link: 'd/target' } });
    const dst = await copy(src, { sources: ['d', 'top'], dest: '/o/' });
    assert.equal(fs.readlinkSync(path.join(dst, 'o/link')), 'target');
    assert.equal(fs.readlinkSync(path.join(dst, 'o/abs')), '/nowhere');
    assert.ok(stat(dst, 'o/top').isFile());
    assert.equal(read(dst, 'o/top'), 'T');
    const dst2 = await copy(src, { sources: ['top'], dest: '/o/', followSourceSymlinks: false });
    assert.equal(fs.readlinkSync(path.join(dst2, 'o/top')), 'd/target');
  });

  test('hardlinks within one source stay hardlinks', async () => {
    const src = tree({ 'd/a': 'same' });
    fs.linkSync(path.join(src, 'd/a'), path.join(src, 'd/b'));
    const dst = await copy(src, { sources: ['d'], dest: '/o' });
    assert.equal(stat(dst, 'o/a').ino, stat(dst, 'o/b').ino);
    assert.equal(stat(dst, 'o/a').nlink, 2);
  });

  test('--chmod applies to copied files and directories; octal also to created parents', async () => {
    const src = tree({ 'd/f': { file: 'x', mode: 0o600 }, 'd/s': { dir: true, mode: 0o700 } });
    const dst = await copy(src, { sources: ['d'], dest: '/p/q/', chmod: '751' });
    for (const p of ['p', 'p/q', 'p/q/f', 'p/q/s']) assert.equal(stat(dst, p).mode & 0o7777, 0o751, p);
    const dst2 = await copy(src, { sources: ['d'], dest: '/p/q/', chmod: 'u=rwX,go=rX' });
    assert.equal(stat(dst2, 'p').mode & 0o7777, 0o755);
    assert.equal(stat(dst2, 'p/q/f').mode & 0o7777, 0o644);
    assert.equal(stat(dst2, 'p/q/s').mode & 0o7777, 0o755);
  });

  test('inline heredoc sources are 0644 files named by their path', async () => {
    const src = tree({ f: 'ctx' });
    const dst = await copy(src, { sources: ['f'], inline: [{ path: 'EOF', data: 'hello\n' }], dest: '/d/' });
    assert.equal(read(dst, 'd/EOF'), 'hello\n');
    assert.equal(stat(dst, 'd/EOF').mode & 0o7777, 0o644);
    assert.equal(read(dst, 'd/f'), 'ctx');
  });

  test('a file over an existing directory, or a directory over a file, is an error', async () => {
    const src = tree({ 'd/x': 'file', 'e/x/y': 'dir' });
    const dst = tree({ 'o/x/keep': 'k' });
    await assert.rejects(copy(src, { sources: ['d'], dest: '/o' }, dst), /cannot replace directory \/o\/x with a file/);
    const dst2 = tree({ 'o/x': 'plain file' });
    await assert.rejects(copy(src, { sources: ['e'], dest: '/o' }, dst2), /non-directory \/o\/x/);
  });

  test('existing files are overwritten, a symlink in the way is replaced (not followed)', async () => {
    const outside = tree({ victim: 'safe' });
    const src = tree({ 'd/x': 'new', 'd/y': 'new-y' });
    const dst = tree({ 'o/x': 'old', 'o/y': { link: path.join(outside, 'victim') } });
    await copy(src, { sources: ['d'], dest: '/o' }, dst);
    assert.equal(read(dst, 'o/x'), 'new');
    assert.ok(stat(dst, 'o/y').isFile());
    assert.equal(read(outside, 'victim'), 'safe');
  });
});

describe('copyInto: ownership (root)', { skip: isRoot ? false : 'needs root' }, () => {
  test('default owner is 0:0; --chown sets files and created parents; preserveOwnership keeps source owners', async () => {
    const src = tree({ 'd/f': 'x' });
    fs.lchownSync(path.join(src, 'd/f'), 99, 98);
    const d1 = await copy(src, { sources: ['d'], dest: '/o' });
    assert.deepEqual([stat(d1, 'o/f').uid, stat(d1, 'o/f').gid], [0, 0]);
    const d2 = await copy(src, { sources: ['d'], dest: '/p/q', chown: { uid: 1000, gid: 1001 } });
    for (const p of ['p', 'p/q', 'p/q/f']) assert.deepEqual([stat(d2, p).uid, stat(d2, p).gid], [1000, 1001], p);
    const d3 = await copy(src, { sources: ['d'], dest: '/o', preserveOwnership: true });
    assert.deepEqual([stat(d3, 'o/f').uid, stat(d3, 'o/f').gid], [99, 98]);
  });

  test('setuid bits survive the chown', async () => {
    const src = tree({ s: { file: 'x', mode: 0o4755 } });
    fs.chmodSync(path.join(src, 's'), 0o4755);
    const dst = await copy(src, { sources: ['s'], dest: '/s', chown: { uid: 5, gid: 5 } });
    assert.equal(stat(dst, 's').mode & 0o7777, 0o4755);
  });

  test('existing dest directory keeps its owner; entries below take the copy owner', async () => {
    const src = tree({ 'd/sub/f': 'x' });
    const dst = tree({ 'o/sub': { dir: true } });
    fs.lchownSync(path.join(dst, 'o'), 7, 7);
    fs.lchownSync(path.join(dst, 'o/sub'), 7, 7);
    await copy(src, { sources: ['d'], dest: '/o' }, dst);
    assert.equal(stat(dst, 'o').uid, 7);
    assert.equal(stat(dst, 'o/sub').uid, 0);
  });
});

describe('copyInto: destination symlinks stay inside destRoot', () => {
  test('a dest path through a symlink to /etc writes to destRoot/etc, never the host', async () => {
    const src = tree({ 'conf.txt': 'kiln' });
    const dst = tree({ etc: { dir: true }, cfg: { link: '/etc' }, rel: { link: '../../../../../../etc' } });
    await copy(src, { sources: ['conf.txt'], dest: '/cfg/kiln-test/' }, dst);
    await copy(src, { sources: ['conf.txt'], dest: '/rel/kiln-rel.txt' }, dst);
    assert.equal(read(dst, 'etc/kiln-test/conf.txt'), 'kiln');
    assert.equal(read(dst, 'etc/kiln-rel.txt'), 'kiln');
    assert.equal(fs.existsSync('/etc/kiln-test'), false);
    assert.equal(fs.existsSync('/etc/kiln-rel.txt'), false);
  });

  test('a dangling dest symlink creates its target inside destRoot', async () => {
    const src = tree({ f: 'x' });
    const dst = tree({ link: { link: 'target' } });
    await copy(src, { sources: ['f'], dest: '/link/sub/' }, dst);
    assert.equal(read(dst, 'target/sub/f'), 'x');
  });

  test('dest "/link/.." is cleaned lexically before symlinks are resolved', async () => {
    const src = tree({ f: 'x' });
    const dst = tree({ link: { link: '/deep/dir' } });
    await copy(src, { sources: ['f'], dest: '/link/../' }, dst);
    assert.equal(read(dst, 'f'), 'x');
  });
});

describe('copyInto: --parents, --exclude, .dockerignore', () => {
  const ctx = (): string =>
    tree({ 'x/a.txt': 'xa', 'x/y/a.txt': 'xya', 'x/y/b.txt': 'xyb', 'x/z/c.txt': 'xzc', 'y/a.txt': 'ya' });

  test('--parents keeps the source path', async () => {
    const dst = await copy(ctx(), { sources: ['./x/a.txt', './y/a.txt'], dest: '/parents/', parents: true });
    assert.deepEqual(list(dst), ['parents/', 'parents/x/', 'parents/x/a.txt', 'parents/y/', 'parents/y/a.txt']);
    const dst2 = await copy(ctx(), { sources: ['x/y/'], dest: '/p/', parents: true });
    assert.deepEqual(list(dst2), ['p/', 'p/x/', 'p/x/y/', 'p/x/y/a.txt', 'p/x/y/b.txt']);
  });

  test('--parents with a ./ pivot and wildcards', async () => {
    const dst = await copy(ctx(), { sources: ['./x/./y/*.txt'], dest: '/p/', parents: true });
    assert.deepEqual(list(dst), ['p/', 'p/y/', 'p/y/a.txt', 'p/y/b.txt']);
    const dst2 = await copy(ctx(), { sources: ['./x/*/a.txt', './*/b.txt'], dest: '/q/', parents: true });
    assert.deepEqual(list(dst2), ['q/', 'q/x/', 'q/x/y/', 'q/x/y/a.txt']);
    const dst3 = await copy(ctx(), { sources: ['./x/./'], dest: '/r/', parents: true });
    assert.deepEqual(list(dst3), ['r/', 'r/a.txt', 'r/y/', 'r/y/a.txt', 'r/y/b.txt', 'r/z/', 'r/z/c.txt']);
  });

  test('--parents with a missing literal source is not found', async () => {
    await assert.rejects(copy(ctx(), { sources: ['x/nope.txt'], dest: '/p/', parents: true }), isNotFound);
  });

  test('--exclude patterns are relative to each source, with ! exceptions', async () => {
    const dst = await copy(ctx(), { sources: ['x'], dest: '/e/', excludes: ['*.txt'] });
    assert.deepEqual(list(dst), ['e/', 'e/y/', 'e/y/a.txt', 'e/y/b.txt', 'e/z/', 'e/z/c.txt']);
    const dst2 = await copy(ctx(), { sources: ['.'], dest: '/e/', excludes: ['**/a.txt', '!x/y/a.txt', 'x/z'] });
    assert.deepEqual(list(dst2), ['e/', 'e/x/', 'e/x/y/', 'e/x/y/a.txt', 'e/x/y/b.txt', 'e/y/']);
  });

  test('.dockerignore: ignored paths are absent, re-included ones keep their ignored parents', async () => {
    const pm = createPatternMatcher(['x', '!x/y/b.txt', 'y/a.txt']);
    const ig = { isIgnored: (p: string) => pm.matches(p), ignoreHasExceptions: true };
    const dst = await copy(ctx(), { sources: ['.'], dest: '/c/', ...ig });
    assert.deepEqual(list(dst), ['c/', 'c/x/', 'c/x/y/', 'c/x/y/b.txt', 'c/y/']);
    await assert.rejects(copy(ctx(), { sources: ['y/a.txt'], dest: '/c/', ...ig }), isNotFound);
    await assert.rejects(copy(ctx(), { sources: ['x/z'], dest: '/c/', ...ig }), isNotFound);
    const dst2 = await copy(ctx(), { sources: ['x/*'], dest: '/w/', ...ig });
    assert.deepEqual(list(dst2), ['w/', 'w/b.txt']);
  });
});

describe('copyInto: cancellation and speed', () => {
  test('an aborted signal stops the copy', async () => {
    const src = tree({ f: 'x' });
    const ac = new AbortController();
    ac.abort();
    await assert.rejects(copy(src, { sources: ['f'], dest: '/f', signal: ac.signal }), { name: 'AbortError' });
  });

  test('5,000 small files copy (timing is reported, targets live in bench/)', async (t) => {
    const src = path.join(base, 'many');
    for (let d = 0; d < 50; d++) {
      fs.mkdirSync(path.join(src, `d${d}`), { recursive: true });
      for (let f = 0; f < 100; f++) fs.writeFileSync(path.join(src, `d${d}`, `f${f}`), `${d}/${f}`);
    }
    const t0 = performance.now();
    const dst = tree({});
    const r = await copyInto({ srcRoot: src, sources: ['.'], destRoot: dst, dest: '/m/', workdir: '/' });
    const ms = performance.now() - t0;
    assert.equal(r.files, 5000);
    t.diagnostic(`5,000 files copied in ${Math.round(ms)} ms`);
  });
});
