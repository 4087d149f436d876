/**
 * Conformance: .dockerignore matching (moby/patternmatcher), ignore-file reading, and the context walk
 * (tonistiigi/fsutil), all driven by ../shared/conformance/dockerignore.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, chownSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync, linkSync, copyFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import {
  createPatternMatcher,
  describePattern,
  matchesDeprecated,
  parseIgnoreFile,
  readIgnorePatterns,
  walkContext,
  type ContextEntry,
  type WalkContextOptions,
} from '../../src/context/index.js';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const dataDir = path.resolve(repoRoot, '..', 'shared', 'conformance', 'dockerignore');
const readJson = <T>(name: string): T => JSON.parse(readFileSync(path.join(dataDir, name), 'utf8')) as T;

interface MatchCase {
  patterns: string[];
  path: string;
  match: boolean;
  api: 'Matches' | 'MatchesOrParentMatches';
  test: string;
  error?: boolean;
  note?: string;
}

const isPatternError = (err: unknown): boolean => (err as { code?: string }).code === 'ERR_KILN_IGNORE_PATTERN';

/** A note such as "the other semantics (Matches) gives False" states the deprecated API's answer. */
function otherSemantics(note: string | undefined): boolean | undefined {
  const m = /other semantics \(Matches\) gives (True|False)/i.exec(note ?? '');
  return m ? m[1].toLowerCase() === 'true' : undefined;
}

describe('cases.json', () => {
  const cases = readJson<MatchCase[]>('cases.json');
  cases.forEach((c, i) => {
    const name = `#${i} ${c.test} [${c.api}] ${JSON.stringify(c.patterns)} ${JSON.stringify(c.path)} -> ${c.error ? 'error' : c.match}`;
    test(name, () => {
      if (c.error) {
        assert.throws(() => createPatternMatcher(c.patterns).matches(c.path), isPatternError);
        assert.throws(() => matchesDeprecated(c.patterns, c.path), isPatternError);
        return;
      }
      // Both semantics agree on every case except the ones whose note says otherwise.
      assert.equal(createPatternMatcher(c.patterns).matches(c.path), c.match, 'MatchesOrParentMatches');
      const deprecated = c.api === 'Matches' ? c.match : (otherSemantics(c.note) ?? c.match);
      assert.equal(matchesDeprecated(c.patterns, c.path), deprecated, 'Matches');
    });
  });
});

describe('pattern-extra.json', () => {
  const extra = readJson<{
    constructor: { cases: Array<{ patterns: string[]; kept?: number; has_exclusions?: boolean; error?: boolean }> };
    compile_kinds: { cases: Array<{ pattern: string; kind: string; regexp: string | null }> };
  }>('pattern-extra.json');
  extra.constructor.cases.forEach((c, i) => {
    test(`constructor #${i} ${JSON.stringify(c.patterns)}`, () => {
      if (c.error) {
        assert.throws(() => createPatternMatcher(c.patterns), isPatternError);
        return;
      }
      const m = createPatternMatcher(c.patterns);
      if (c.kept !== undefined) assert.equal(m.patterns.length, c.kept);
      if (c.has_exclusions !== undefined) assert.equal(m.patterns.some((p) => p.startsWith('!')), c.has_exclusions);
      for (const p of m.patterns) assert.equal(p, p.trim(), 'patterns are trimmed');
    });
  });
  extra.compile_kinds.cases.forEach((c) => {
    test(`compile kind ${JSON.stringify(c.pattern)} is ${c.kind}`, () => {
      const d = describePattern(c.pattern);
      assert.ok(d);
      assert.equal(d.kind, c.kind);
      assert.equal(d.regexp, c.regexp);
    });
  });
});

const tmpRoot = mkdtempSync(path.join(os.tmpdir(), 'kiln-dockerignore-'));
chmodSync(tmpRoot, 0o755); // the permission cases walk as an unprivileged user
after(() => {
  chmodTree(tmpRoot);
  rmSync(tmpRoot, { recursive: true, force: true });
});

function chmodTree(dir: string): void {
  try {
    chmodSync(dir, 0o755);
    for (const e of readdirSync(dir, { withFileTypes: true })) if (e.isDirectory()) chmodTree(path.join(dir, e.name));
  } catch {
    /* best effort cleanup */
  }
}

describe('ignorefile', () => {
  const expected = readJson<{ expected_patterns: string[] }>('ignorefile/expected.json');
  test('dockerignore.txt parses to expected_patterns', () => {
    const text = readFileSync(path.join(dataDir, 'ignorefile', 'dockerignore.txt'), 'utf8');
    assert.deepEqual(parseIgnoreFile(text), expected.expected_patterns);
  });
  test('reading .dockerignore from a context gives expected_patterns; no file gives []', async () => {
    const ctx = mkdtempSync(path.join(tmpRoot, 'ignorefile-'));
    assert.deepEqual(await readIgnorePatterns({ contextDir: ctx }), []);
    copyFileSync(path.join(dataDir, 'ignorefile', 'dockerignore.txt'), path.join(ctx, '.dockerignore'));
    assert.deepEqual(await readIgnorePatterns({ contextDir: ctx }), expected.expected_patterns);
  });
});

interface WalkCase {
  source: string;
  tree: string[];
  IncludePatterns?: string[];
  ExcludePatterns?: string[];
  FollowPaths?: string[];
  filter_chain?: Array<{ IncludePatterns?: string[]; ExcludePatterns?: string[] }>;
  output?: string[];
  error?: boolean;
  error_contains?: string;
  setup?: string;
  open?: Record<string, string>;
}

function buildTree(dir: string, lines: string[]): void {
  for (const line of lines) {
    const [verb, rel, kind, ...rest] = line.trim().split(' ');
    assert.equal(verb, 'ADD', `tree line ${line}`);
    const abs = path.join(dir, rel);
    if (kind === 'dir') mkdirSync(abs, { mode: 0o700 });
    else if (kind === 'symlink') symlinkSync(rest.join(' '), abs);
    else if (kind === 'file' && rest[0]?.startsWith('>')) linkSync(path.join(dir, rest[0].slice(1)), abs);
    else if (kind === 'file') writeFileSync(abs, rest.join(' '), { mode: 0o644 });
    else assert.fail(`unknown tree kind in ${line}`);
  }
}

function formatEntry(e: ContextEntry): string {
  if (e.type === 'symlink') return `symlink:${e.linkTarget} ${e.path}`;
  return `${e.type === 'dir' ? 'dir' : 'file'} ${e.path}`;
}

function walkOptions(dir: string, c: WalkCase): WalkContextOptions {
  const chain = c.filter_chain ?? [{ IncludePatterns: c.IncludePatterns, ExcludePatterns: c.ExcludePatterns }];
  return {
    dir,
    includePatterns: chain[0].IncludePatterns,
    excludePatterns: chain[0].ExcludePatterns,
    followPaths: c.FollowPaths,
    filters: chain.slice(1).map((f) => ({ includePatterns: f.IncludePatterns, excludePatterns: f.ExcludePatterns })),
  };
}

type WalkOutcome = { ok: true; lines: string[] } | { ok: false; message: string; code?: string };

async function walkHere(opts: WalkContextOptions): Promise<WalkOutcome> {
  try {
    return { ok: true, lines: (await walkContext(opts)).map(formatEntry) };
  } catch (err) {
    return { ok: false, message: (err as Error).message, code: (err as { code?: string }).code };
  }
}

/** Permission cases must not run as root (root reads a 0000 directory); run those walks as nobody. */
function walkAsNobody(opts: WalkContextOptions, treeDir: string): WalkOutcome {
  chownTree(treeDir, 65534);
  chownTree(path.dirname(treeDir), 65534, false);
  const entry = path.join(repoRoot, 'src', 'context', 'index.ts');
  const script = `
    import { walkContext } from ${JSON.stringify(entry)};
    const opts = JSON.parse(process.env.KILN_WALK_OPTS);
    const fmt = (e) => e.type === 'symlink' ? 'symlink:' + e.linkTarget + ' ' + e.path : (e.type === 'dir' ? 'dir' : 'file') + ' ' + e.path;
    try { console.log(JSON.stringify({ ok: true, lines: (await walkContext(opts)).map(fmt) })); }
    catch (err) { console.log(JSON.stringify({ ok: false, message: err.message, code: err.code })); }`;
  const r = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
    cwd: repoRoot,
    uid: 65534,
    gid: 65534,
    env: { ...process.env, KILN_WALK_OPTS: JSON.stringify(opts), HOME: '/tmp' },
    encoding: 'utf8',
  });
  assert.equal(r.status, 0, `child walk failed: ${r.stderr}`);
  return JSON.parse(r.stdout.trim().split('\n').pop()!) as WalkOutcome;
}

function chownTree(dir: string, id: number, recursive = true): void {
  chownSync(dir, id, id);
  if (!recursive) return;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isSymbolicLink()) continue;
    chownSync(p, id, id);
    if (e.isDirectory()) chownTree(p, id);
  }
}

describe('context-walk.json', () => {
  const { cases } = readJson<{ cases: WalkCase[] }>('context-walk.json');
  cases.forEach((c, i) => {
    const opts = [c.IncludePatterns && `include=${JSON.stringify(c.IncludePatterns)}`, c.ExcludePatterns && `exclude=${JSON.stringify(c.ExcludePatterns)}`,
      c.FollowPaths && `follow=${JSON.stringify(c.FollowPaths)}`, c.filter_chain && `chain=${JSON.stringify(c.filter_chain)}`].filter(Boolean).join(' ');
    test(`#${i} ${c.source} ${opts}`, async () => {
      const parent = mkdtempSync(path.join(tmpRoot, `walk-${i}-`));
      const dir = path.join(parent, 'ctx');
      mkdirSync(dir, { mode: 0o755 });
      buildTree(dir, c.tree);
      const opts = walkOptions(dir, c);
      let outcome: WalkOutcome;
      if (c.setup?.includes('chmod foo/bar to 0000')) {
        chmodSync(path.join(dir, 'foo', 'bar'), 0o000);
        outcome = process.getuid?.() === 0 ? walkAsNobody(opts, dir) : await walkHere(opts);
      } else {
        assert.equal(c.setup, undefined, 'unknown setup step');
        outcome = await walkHere(opts);
      }
      if (c.error) {
        assert.equal(outcome.ok, false, `expected an error, got ${JSON.stringify(outcome)}`);
        if (!outcome.ok && c.error_contains) assert.match(outcome.message, new RegExp(c.error_contains));
        return;
      }
      assert.ok(outcome.ok, `walk failed: ${outcome.ok ? '' : outcome.message}`);
      if (c.output) assert.deepEqual(outcome.lines, c.output);
      for (const [p, expect] of Object.entries(c.open ?? {})) {
        const present = outcome.lines.includes(`file ${p}`);
        assert.equal(present, expect.startsWith('ok'), `open ${p}: ${expect}`);
      }
    });
  });
});
