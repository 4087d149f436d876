/**
 * Conformance: COPY/ADD file semantics against Docker's own results. Replays every buildah conformance build case
 * whose stages are all `FROM scratch` and whose instructions are only COPY/ADD/WORKDIR/ARG, using copyInto for
 * each step, and compares the final filesystem with Docker's result in expected-docker.json (type, mode, owner,
 * size, content digest, link target, and mtimes of non-directories). Cases Docker could not build (labs flags)
 * must build without error; cases expected to fail must fail at the given line. Needs root (chown, setuid files).
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import tarStream from 'tar-stream';
import { copyInto, PatternMatcher, type CopyRequest } from '../../src/ops/file/index.js';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const casesDir = path.resolve(repoRoot, '..', 'shared', 'conformance', 'build-cases');
const TEST_DATE = 1485449953;
const isRoot = process.getuid?.() === 0;

interface SetupOp {
  op: 'mkdir' | 'write_file' | 'write_tar';
  path: string;
  mode?: string;
  uid?: number;
  gid?: number;
  mtime?: number;
  content?: string;
  chmod_after_create?: boolean;
  xattrs?: Record<string, string>;
  entries?: Array<{ name: string; type: 'reg' | 'dir'; content?: string; mode: string; uid: number; gid: number; mtime: number; pax_records?: Record<string, string> }>;
}
interface Case {
  case: string;
  dockerfile: string;
  base_images: string[];
  setup?: SetupOp[];
  build_args?: Record<string, string>;
  expect_failure_at_line?: number;
  fs_skip?: string[];
}
interface FsEntry {
  type: string;
  mode: number;
  uid: number;
  gid: number;
  size: number | null;
  sha256: string | null;
  link: string | null;
  mtime: number;
}
interface Expected {
  fs: { del: string[]; set: Record<string, FsEntry> };
}

const index = JSON.parse(fs.readFileSync(path.join(casesDir, 'index.json'), 'utf8')) as { cases: Case[] };
const expectedAll = JSON.parse(fs.readFileSync(path.join(casesDir, 'expected-docker.json'), 'utf8')) as Record<
  string,
  { buildkit?: Expected | null; classic?: Expected | null }
>;
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'kiln-fileops-conf-'));
after(() => fs.rmSync(work, { recursive: true, force: true }));

interface Instr {
  line: number;
  keyword: string;
  args: string;
}

/** Dockerfile lines (no continuations or heredocs in the selected cases). */
function instructions(text: string): Instr[] {
  const out: Instr[] = [];
  text.split('\n').forEach((raw, i) => {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) return;
    const m = /^(\S+)\s*(.*)$/.exec(line)!;
    out.push({ line: i + 1, keyword: m[1].toUpperCase(), args: m[2] });
  });
  return out;
}

function selectable(c: Case): boolean {
  if (c.base_images.some((b) => b !== 'scratch')) return false;
  const text = fs.readFileSync(path.join(casesDir, c.case, c.dockerfile), 'utf8');
  if (text.includes('<<') || /\\\s*$/m.test(text.replace(/^#.*$/gm, ''))) return false;
  return instructions(text).every((i) => ['FROM', 'COPY', 'ADD', 'WORKDIR', 'ARG'].includes(i.keyword));
}

/** Shell-like words: quotes removed, backslash escapes outside single quotes, $VAR / ${VAR} expanded. */
function words(s: string, vars: Record<string, string>): string[] {
  const t = s.trim();
  if (t.startsWith('[')) return (JSON.parse(t) as string[]).map((w) => expand(w, vars));
  const out: string[] = [];
  let cur: string | null = null;
  for (let i = 0; i < t.length; i++) {
    const ch = t[i];
    if (/\s/.test(ch)) {
      if (cur !== null) out.push(cur);
      cur = null;
      continue;
    }
    cur ??= '';
    if (ch === '\\' && i + 1 < t.length) cur += t[++i];
    else if (ch === "'") {
      const end = t.indexOf("'", i + 1);
      cur += t.slice(i + 1, end);
      i = end;
    } else if (ch === '"') {
      const end = t.indexOf('"', i + 1);
      cur += expand(t.slice(i + 1, end), vars);
      i = end;
    } else if (ch === '$') {
      const m = /^\$(?:\{(\w+)\}|(\w+))/.exec(t.slice(i));
      if (m) {
        cur += vars[m[1] ?? m[2]] ?? '';
        i += m[0].length - 1;
      } else cur += ch;
    } else cur += ch;
  }
  if (cur !== null) out.push(cur);
  return out;
}

function expand(s: string, vars: Record<string, string>): string {
  return s.replace(/\$(?:\{(\w+)\}|(\w+))/g, (_, a: string | undefined, b: string | undefined) => vars[(a ?? b)!] ?? '');
}

/**
 * The shared copy of the contexts stores git symlinks as small files holding the link target. Restore them: a
 * file without a newline whose content is a relative path starting with '../' that names an existing entry.
 */
function restoreSymlink(p: string): boolean {
  const st = fs.lstatSync(p);
  if (!st.isFile() || st.size > 255) return false;
  const target = fs.readFileSync(p, 'utf8');
  if (!target.startsWith('../') || /\s/.test(target)) return false;
  if (!fs.existsSync(path.resolve(path.dirname(p), target))) return false;
  fs.rmSync(p);
  fs.symlinkSync(target, p);
  return true;
}

async function prepareContext(c: Case): Promise<string> {
  const ctx = path.join(work, c.case, 'context');
  fs.mkdirSync(path.dirname(ctx), { recursive: true });
  fs.cpSync(path.join(casesDir, c.case), ctx, { recursive: true });
  // as checked out by git (0644 files, 0755 dirs), with upstream's test date
  const fix = (p: string): void => {
    const st = fs.lstatSync(p);
    if (st.isDirectory()) {
      fs.chmodSync(p, 0o755);
      for (const n of fs.readdirSync(p)) fix(path.join(p, n));
    } else if (st.isFile()) {
      if (restoreSymlink(p)) {
        fs.lutimesSync(p, TEST_DATE, TEST_DATE);
        return;
      }
      fs.chmodSync(p, 0o644);
    }
    fs.utimesSync(p, TEST_DATE, TEST_DATE);
  };
  fix(ctx);
  for (const op of c.setup ?? []) await applySetup(ctx, op);
  return ctx;
}

async function applySetup(ctx: string, op: SetupOp): Promise<void> {
  const p = path.join(ctx, op.path);
  const mode = op.mode ? parseInt(op.mode, 8) : undefined;
  if (op.op === 'mkdir') fs.mkdirSync(p, { recursive: true });
  else if (op.op === 'write_file') {
    fs.mkdirSync(path.dirname(p), { recursive: true });
    fs.writeFileSync(p, op.content ?? '');
  } else fs.writeFileSync(p, await makeTar(op.entries ?? []));
  // owner first: chown clears setuid/setgid bits
  if (op.uid !== undefined) fs.lchownSync(p, op.uid, op.gid ?? op.uid);
  if (mode !== undefined) fs.chmodSync(p, op.op === 'write_tar' || op.chmod_after_create ? mode : mode & ~0o022);
  for (const [k, v] of Object.entries(op.xattrs ?? {})) execFileSync('setfattr', ['-n', k, '-v', v, p]);
  if (op.mtime !== undefined) fs.utimesSync(p, op.mtime, op.mtime);
}

async function makeTar(entries: NonNullable<SetupOp['entries']>): Promise<Buffer> {
  const pack = tarStream.pack();
  const chunks: Buffer[] = [];
  pack.on('data', (d: unknown) => {
    chunks.push(d as Buffer);
  });
  const ended = new Promise<void>((resolve) => pack.on('end', () => resolve()));
  for (const e of entries) {
    const header = {
      name: e.name,
      type: e.type === 'dir' ? ('directory' as const) : ('file' as const),
      mode: parseInt(e.mode, 8),
      uid: e.uid,
      gid: e.gid,
      mtime: new Date(e.mtime * 1000),
      pax: e.pax_records,
    };
    if (e.type === 'dir') pack.entry(header);
    else pack.entry(header, e.content ?? '');
  }
  pack.finalize();
  await ended;
  return Buffer.concat(chunks);
}

function ignoreMatcher(ctx: string): PatternMatcher | undefined {
  const file = path.join(ctx, '.dockerignore');
  if (!fs.existsSync(file)) return undefined;
  const patterns: string[] = [];
  for (let line of fs.readFileSync(file, 'utf8').replace(/^\uFEFF/, '').split('\n')) {
    if (line.startsWith('#')) continue;
    line = line.trim();
    if (line === '') continue;
    let neg = '';
    if (line.startsWith('!')) {
      neg = '!';
      line = line.slice(1).trim();
    }
    line = path.posix.normalize(line);
    if (line.startsWith('/')) line = line.slice(1);
    patterns.push(neg + line);
  }
  return new PatternMatcher(patterns);
}

/**
 * What Docker 20.10's context transfer left out (the expected results come from it): a path is ignored when the
 * patterns match it, and also everything below an ignored directory unless an exception pattern's text starts with
 * that directory's path (its walker skipped such directories; newer fsutil walks into them when an exception has
 * glob characters).
 */
function transferredBy2010(pm: PatternMatcher): (p: string) => boolean {
  const exceptions = pm.patterns.filter((p) => p.exclusion).map((p) => p.text + '/');
  return (p: string): boolean => {
    if (pm.matchesOrParentMatches(p)) return true;
    const parts = p.split('/');
    for (let i = 1; i < parts.length; i++) {
      const dir = parts.slice(0, i).join('/');
      if (pm.matchesOrParentMatches(dir) && !exceptions.some((e) => e.startsWith(dir + '/'))) return true;
    }
    return false;
  };
}

interface Stage {
  name?: string;
  dir: string;
  workdir: string;
}

async function build(c: Case, ctx: string): Promise<{ dir: string; failedAt?: number; error?: unknown }> {
  const text = fs.readFileSync(path.join(casesDir, c.case, c.dockerfile), 'utf8');
  const vars: Record<string, string> = {};
  const stages: Stage[] = [];
  const ignore = ignoreMatcher(ctx);
  for (const ins of instructions(text)) {
    const w = words(ins.args, vars);
    if (ins.keyword === 'ARG') {
      const [k, v] = w[0].split('=');
      vars[k] = c.build_args?.[k] ?? v ?? '';
      continue;
    }
    if (ins.keyword === 'FROM') {
      const dir = path.join(work, c.case, `stage${stages.length}`);
      const parent = stages.find((s) => s.name === w[0].toLowerCase());
      if (parent) execFileSync('cp', ['-a', parent.dir, dir]);
      else fs.mkdirSync(dir);
      stages.push({ dir, workdir: parent?.workdir ?? '/', name: w[2]?.toLowerCase() });
      continue;
    }
    const st = stages[stages.length - 1];
    if (ins.keyword === 'WORKDIR') {
      st.workdir = path.posix.resolve(st.workdir, w[0]);
      fs.mkdirSync(path.join(st.dir, st.workdir), { recursive: true });
      continue;
    }
    const req: CopyRequest = { srcRoot: ctx, sources: [], destRoot: st.dir, dest: '', workdir: st.workdir, unpackArchives: ins.keyword === 'ADD' };
    const rest: string[] = [];
    const excludes: string[] = [];
    for (const word of w) {
      const flag = /^--([a-z-]+)(?:=(.*))?$/.exec(word);
      if (!flag || rest.length > 0) {
        rest.push(word);
        continue;
      }
      const [, name, value] = flag;
      if (name === 'from') {
        const from = stages.find((s, i) => s.name === value!.toLowerCase() || String(i) === value);
        req.srcRoot = from!.dir;
        req.preserveOwnership = true;
      } else if (name === 'chown') {
        const [u, g] = value!.split(':').map(Number);
        req.chown = { uid: u, gid: g ?? u };
      } else if (name === 'chmod') req.chmod = value;
      else if (name === 'exclude') excludes.push(value!);
      else if (name === 'parents') req.parents = value !== 'false';
    }
    req.sources = rest.slice(0, -1);
    req.dest = rest[rest.length - 1];
    if (excludes.length > 0) req.excludes = excludes;
    if (req.srcRoot === ctx && ignore) {
      req.isIgnored = transferredBy2010(ignore);
      req.ignoreHasExceptions = ignore.hasExclusions;
    }
    try {
      await copyInto(req);
    } catch (error) {
      return { dir: st.dir, failedAt: ins.line, error };
    }
  }
  return { dir: stages[stages.length - 1].dir };
}

function snapshot(root: string): Record<string, FsEntry> {
  const out: Record<string, FsEntry> = {};
  const walk = (rel: string): void => {
    for (const name of fs.readdirSync(path.join(root, rel))) {
      const r = rel === '' ? name : `${rel}/${name}`;
      const p = path.join(root, r);
      const st = fs.lstatSync(p);
      const type = st.isDirectory() ? 'dir' : st.isSymbolicLink() ? 'symlink' : st.isFile() ? 'reg' : 'other';
      out[r] = {
        type,
        mode: st.mode & 0o7777,
        uid: st.uid,
        gid: st.gid,
        size: type === 'reg' ? st.size : null,
        sha256: type === 'reg' ? crypto.createHash('sha256').update(fs.readFileSync(p)).digest('hex') : null,
        link: type === 'symlink' ? fs.readlinkSync(p) : null,
        mtime: Math.floor(st.mtimeMs / 1000),
      };
      if (type === 'dir') walk(r);
    }
  };
  walk('');
  return out;
}

function skipped(c: Case): Set<string> {
  const s = new Set<string>();
  for (const f of c.fs_skip ?? []) {
    const tokens = f.split(':');
    const field = tokens.length % 2 === 1 ? tokens.pop()! : '*';
    s.add(`${tokens.filter((_, i) => i % 2 === 1).join('/')}:${field}`);
  }
  return s;
}

function compare(c: Case, actual: Record<string, FsEntry>, expected: Record<string, FsEntry>): string[] {
  const problems: string[] = [];
  const skip = skipped(c);
  for (const p of Object.keys(expected)) if (!(p in actual) && !skip.has(`${p}:*`)) problems.push(`missing ${p}`);
  for (const p of Object.keys(actual)) if (!(p in expected) && !skip.has(`${p}:*`)) problems.push(`extra ${p}`);
  for (const [p, want] of Object.entries(expected)) {
    const got = actual[p];
    if (!got || skip.has(`${p}:*`)) continue;
    for (const k of ['type', 'mode', 'uid', 'gid', 'size', 'sha256', 'link', 'mtime'] as const) {
      if (k === 'mtime' && (want.type === 'dir' || skip.has(`${p}:mtime`))) continue;
      if (got[k] !== want[k]) problems.push(`${p}: ${k} ${String(got[k])} != docker ${String(want[k])}`);
    }
  }
  return problems;
}

const selected = index.cases.filter(selectable);

describe('COPY/ADD build cases (FROM scratch) against Docker', { skip: isRoot ? false : 'needs root (chown, setuid)' }, () => {
  test('selection is non-trivial', () => assert.ok(selected.length >= 60, `only ${selected.length} cases selected`));
  for (const c of selected) {
    test(c.case, async () => {
      const ctx = await prepareContext(c);
      const res = await build(c, ctx);
      if (c.expect_failure_at_line !== undefined) {
        assert.equal(res.failedAt, c.expect_failure_at_line, `expected a failure at line ${c.expect_failure_at_line}`);
        return;
      }
      const results = expectedAll[c.case];
      if (results && !results.buildkit && results.classic) {
        // Docker's BuildKit could not build it (only the classic builder could): kiln follows BuildKit
        assert.notEqual(res.error, undefined, 'BuildKit fails this case; the copy should fail too');
        return;
      }
      assert.equal(res.error, undefined, `build failed at line ${res.failedAt}: ${String((res.error as Error | undefined)?.message)}`);
      const exp = results?.buildkit ?? results?.classic;
      if (!exp) return; // Docker 20.10 could not build it (labs flags): building without error is the check
      assert.deepEqual(compare(c, snapshot(res.dir), exp.fs.set), []);
    });
  }
});

describe('COPY --exclude / --parents pattern dialect against moby/patternmatcher cases', () => {
  interface MatchCase {
    patterns: string[];
    path: string;
    match: boolean;
    api: string;
    error?: boolean;
    note?: string;
  }
  const dataDir = path.resolve(repoRoot, '..', 'shared', 'conformance', 'dockerignore');
  const cases = JSON.parse(fs.readFileSync(path.join(dataDir, 'cases.json'), 'utf8')) as MatchCase[];
  // Unix semantics: only Windows-only cases are left out
  const applicable = cases.filter((c) => !/^windows/i.test(c.note ?? ''));
  test('enough cases', () => assert.ok(applicable.length > 100));
  for (const c of applicable) {
    test(`${JSON.stringify(c.patterns)} ${c.path}`, () => {
      if (c.error) {
        assert.throws(() => new PatternMatcher(c.patterns).matchesOrParentMatches(c.path));
        return;
      }
      const file = c.api === 'Matches' ? path.posix.normalize(c.path) : c.path;
      const got = c.api === 'Matches' && file === '.' ? false : new PatternMatcher(c.patterns).matchesOrParentMatches(file);
      assert.equal(got, c.match);
    });
  }
});
