/**
 * Conformance: COPY/ADD file semantics against Docker's own results. Replays every buildah conformance build case
 * whose stages are all `FROM scratch` and whose instructions are only COPY/ADD/WORKDIR/ARG, using copyInto for
 * each step, and compares the final filesystem with Docker's result in expected-docker.json (type, mode, owner,
 * size, content digest, link target, and mtimes of non-directories). Cases Docker could not build (labs flags)
 * must build without error; cases expected to fail must fail at the given line. Needs root (chown, setuid files).
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { createPatternMatcher } from '../../src/context/index.js';
import { copyInto, type CopyRequest } from '../../src/ops/file/index.js';
import { casesDir, compareFs, ignoreMatcher, loadBuildCases, prepareCaseContext, snapshotDir, transferredBy2010, type BuildCase as Case } from '../helpers/build-cases.js';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const isRoot = process.getuid?.() === 0;

const { cases: allCases, expected: expectedAll } = loadBuildCases();
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

const selected = allCases.filter(selectable);

describe('COPY/ADD build cases (FROM scratch) against Docker', { skip: isRoot ? false : 'needs root (chown, setuid)' }, () => {
  test('selection is non-trivial', () => assert.ok(selected.length >= 60, `only ${selected.length} cases selected`));
  for (const c of selected) {
    test(c.case, async () => {
      const ctx = await prepareCaseContext(c, work);
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
      assert.deepEqual(compareFs(c, snapshotDir(res.dir), exp.fs.set), []);
    });
  }
});

describe('COPY --exclude / --parents pattern dialect (the one .dockerignore matcher) against moby/patternmatcher cases', () => {
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
        assert.throws(() => createPatternMatcher(c.patterns).matches(c.path));
        return;
      }
      const file = c.api === 'Matches' ? path.posix.normalize(c.path) : c.path;
      const got = c.api === 'Matches' && file === '.' ? false : createPatternMatcher(c.patterns).matches(file);
      assert.equal(got, c.match);
    });
  }
});
