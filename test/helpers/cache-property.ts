/**
 * The cache property (issue 10, item 6): random small contexts (files, dirs, symlinks to files and dirs, hardlinks,
 * xattrs, modes, empty files, case-only renames, `.dockerignore` with re-includes) and random Dockerfiles over them
 * (COPY/ADD with globs, --exclude, --chmod, --chown, --link, --parents, followed links, COPY --from, RUN
 * --mount=type=bind), then random mutations of the context between builds; after every rebuild the verify oracle
 * (src/verify) must find no stale hit. Builds run in-process through the engine; the builds of one scenario share a
 * state root. Used by test/integration/cache-property.test.ts (fixed seed) and bench/cache-property.ts (random seed).
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { importRootfs, openState, runBuild, type BuildRequest, type State } from '../../src/engine/index.js';
import { createProgress } from '../../src/progress/index.js';
import { verifyBuild, type VerifyDifference } from '../../src/verify/index.js';
import { busyboxRootfsTar } from './kiln.js';

/** mulberry32: a small seeded PRNG. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

interface Rand {
  next: () => number;
  int(n: number): number;
  pick<T>(xs: readonly T[]): T;
  chance(p: number): boolean;
}

function rand(seed: number): Rand {
  const next = rng(seed);
  return {
    next,
    int: (n) => Math.floor(next() * n),
    pick: (xs) => xs[Math.floor(next() * xs.length)]!,
    chance: (p) => next() < p,
  };
}

const DIRS = ['x', 'y', 'x/z'];
const NAMES = ['a', 'b', 'A', 'c.txt', 'd.log', 'keep', 'e.txt'];
const MODES = [0o644, 0o755, 0o600, 0o640, 0o4755, 0o1777];

function files(ctx: string): string[] {
  const out: string[] = [];
  const walk = (rel: string): void => {
    for (const n of fs.readdirSync(path.join(ctx, rel))) {
      const r = rel ? `${rel}/${n}` : n;
      const st = fs.lstatSync(path.join(ctx, r));
      if (st.isDirectory()) walk(r);
      else if (r !== 'Dockerfile' && r !== '.dockerignore') out.push(r);
    }
  };
  walk('');
  return out.sort();
}

function regularFiles(ctx: string): string[] {
  return files(ctx).filter((f) => fs.lstatSync(path.join(ctx, f)).isFile());
}

function content(r: Rand): string {
  return r.chance(0.15) ? '' : `${'abcdefgh'.slice(0, 1 + r.int(8))}-${r.int(1000)}\n`;
}

/** A random small context. */
export function makeContext(r: Rand, dir: string): void {
  for (const d of DIRS) fs.mkdirSync(path.join(dir, d), { recursive: true });
  for (const d of ['', ...DIRS]) {
    for (const n of NAMES) if (r.chance(0.35)) fs.writeFileSync(path.join(dir, d, n), content(r));
  }
  fs.writeFileSync(path.join(dir, 'c.txt'), content(r));
  fs.writeFileSync(path.join(dir, 'x/a'), content(r));
  const regs = regularFiles(dir);
  for (const f of regs) {
    if (r.chance(0.3)) fs.chmodSync(path.join(dir, f), r.pick(MODES));
    if (r.chance(0.2)) execFileSync('setfattr', ['-n', 'user.k', '-v', `v${r.int(3)}`, path.join(dir, f)]);
  }
  if (r.chance(0.3)) fs.chmodSync(path.join(dir, 'y'), 0o750);
  fs.symlinkSync('c.txt', path.join(dir, 'lnk'));
  fs.symlinkSync('x', path.join(dir, 'lnkdir'));
  if (r.chance(0.5)) fs.symlinkSync('../c.txt', path.join(dir, 'x/up'));
  const h = r.pick(regs);
  const target = path.join(dir, 'x', 'hard');
  if (!fs.existsSync(target)) fs.linkSync(path.join(dir, h), target);
  if (r.chance(0.6)) fs.writeFileSync(path.join(dir, '.dockerignore'), r.pick(['*.log\n', 'y\n!y/keep\n', '**/*.log\n!x/d.log\n', 'x/z\n', '']));
}

const SOURCES = ['.', 'x', 'x/*', 'y', 'lnk', 'lnkdir', '*.txt', 'x/a', 'x/hard', '[cd]*'];

/** A random Dockerfile over such a context. */
export function makeDockerfile(r: Rand): string {
  const lines: string[] = [];
  const stage = r.chance(0.3);
  if (stage) lines.push('FROM busybox:latest AS s', `COPY ${r.pick(SOURCES)} /s/`, 'RUN echo stage > /s/marker');
  lines.push('FROM busybox:latest');
  const n = 1 + r.int(3);
  for (let i = 0; i < n; i++) {
    const flags: string[] = [];
    if (r.chance(0.2)) flags.push(`--chmod=${r.pick(['755', '600', '4755'])}`);
    if (r.chance(0.2)) flags.push(`--chown=${r.pick(['1:2', '7'])}`);
    if (r.chance(0.15)) flags.push('--link');
    if (r.chance(0.15)) flags.push(`--exclude=${r.pick(['*.log', 'a', 'z'])}`);
    const kind = r.int(10);
    if (kind < 5) lines.push(`COPY ${flags.join(' ')} ${r.pick(SOURCES)} /c${i}/`);
    else if (kind < 6) lines.push(`COPY --parents ${r.pick(['x/./z', 'x/*', 'y'])} /p${i}/`);
    else if (kind < 7) lines.push(`ADD ${flags.join(' ')} ${r.pick(SOURCES)} /d${i}/`);
    else if (kind < 8 && stage) lines.push(`COPY --from=s ${r.pick(['/s', '/s/marker', '/s/*'])} /f${i}/`);
    else lines.push(`RUN --mount=type=bind,source=${r.pick(['x', '.', 'y'])},target=/m find /m | sort > /list${i}; find /m -exec stat -c '%n %a %u:%g %s' {} + | sort > /stat${i}; cat /m/a /m/c.txt > /cat${i} 2>/dev/null; true`);
  }
  return `${lines.join('\n')}\n`;
}

const MUTATIONS = ['content', 'same-size', 'mode', 'retarget', 'link-file', 'split', 'join', 'xattr', 'rename', 'case-rename', 'delete', 'add', 'dockerignore', 'dir-mode'] as const;

/** Apply one random mutation; returns its description. */
export function mutate(r: Rand, ctx: string): string {
  const kind = r.pick(MUTATIONS);
  const regs = regularFiles(ctx);
  const all = files(ctx);
  const p = (f: string): string => path.join(ctx, f);
  const f = regs.length > 0 ? r.pick(regs) : 'c.txt';
  switch (kind) {
    case 'content':
      fs.writeFileSync(p(f), `${content(r)}more ${r.int(1e6)}\n`);
      return `${kind} ${f}`;
    case 'same-size': {
      const st = fs.statSync(p(f));
      const old = fs.readFileSync(p(f));
      if (old.length === 0) return `${kind} ${f} (empty)`;
      const b = Buffer.from(old);
      b[0] = b[0] === 0x5a ? 0x59 : 0x5a;
      fs.writeFileSync(p(f), b);
      fs.utimesSync(p(f), st.atime, st.mtime);
      return `${kind} ${f}`;
    }
    case 'mode':
      fs.chmodSync(p(f), r.pick(MODES));
      return `${kind} ${f}`;
    case 'retarget': {
      const l = r.pick(['lnk', 'lnkdir', 'x/up']);
      fs.rmSync(p(l), { force: true });
      fs.symlinkSync(r.pick(l === 'lnkdir' ? ['x', 'y', 'x/z'] : ['c.txt', 'x/a', '../c.txt', 'e.txt', 'missing']), p(l));
      return `${kind} ${l}`;
    }
    case 'link-file': {
      const l = r.pick(all);
      const st = fs.lstatSync(p(l));
      if (st.isSymbolicLink()) {
        fs.rmSync(p(l));
        fs.writeFileSync(p(l), content(r));
      } else {
        fs.rmSync(p(l));
        fs.symlinkSync('c.txt', p(l));
      }
      return `${kind} ${l}`;
    }
    case 'split': {
      const linked = regs.filter((x) => fs.statSync(p(x)).nlink > 1);
      if (linked.length === 0) return `${kind} (none)`;
      const x = r.pick(linked);
      const st = fs.statSync(p(x));
      const data = fs.readFileSync(p(x));
      fs.rmSync(p(x));
      fs.writeFileSync(p(x), data);
      fs.chmodSync(p(x), st.mode & 0o7777);
      fs.utimesSync(p(x), st.atime, st.mtime);
      return `${kind} ${x}`;
    }
    case 'join': {
      if (regs.length < 2) return `${kind} (none)`;
      const a = r.pick(regs);
      const b = r.pick(regs.filter((x) => x !== a));
      fs.rmSync(p(b));
      fs.linkSync(p(a), p(b));
      return `${kind} ${a} ${b}`;
    }
    case 'xattr':
      execFileSync('setfattr', ['-n', 'user.k', '-v', `w${r.int(100)}`, p(f)]);
      return `${kind} ${f}`;
    case 'rename': {
      const to = path.join(r.pick(['', ...DIRS]), r.pick(NAMES));
      if (fs.existsSync(p(to)) || to === f) return `${kind} (taken)`;
      fs.renameSync(p(f), p(to));
      return `${kind} ${f} ${to}`;
    }
    case 'case-rename': {
      const up = (s: string): string => s.replace(/[^/]+$/, (b) => (b === b.toLowerCase() ? b.toUpperCase() : b.toLowerCase()));
      const to = up(f);
      if (fs.existsSync(p(to))) return `${kind} (taken)`;
      fs.renameSync(p(f), p(to));
      return `${kind} ${f} ${to}`;
    }
    case 'delete':
      fs.rmSync(p(r.pick(all)), { force: true });
      return `${kind}`;
    case 'add': {
      const to = path.join(r.pick(['', ...DIRS]), `n${r.int(50)}${r.pick(['', '.txt', '.log'])}`);
      fs.writeFileSync(p(to), content(r));
      return `${kind} ${to}`;
    }
    case 'dockerignore':
      fs.writeFileSync(p('.dockerignore'), r.pick(['*.log\n', 'y\n!y/keep\n', '**/*.log\n!x/d.log\n', 'x/z\n', '']));
      return kind;
    case 'dir-mode':
      fs.chmodSync(p(r.pick(DIRS)), r.pick([0o755, 0o750, 0o700]));
      return kind;
  }
}

export interface PropertyOptions {
  seed: number;
  /** scenarios (a context and a Dockerfile, with their own state root) */
  scenarios: number;
  /** index of the first scenario (to replay one scenario of a seed) */
  firstScenario?: number;
  /** mutation rounds per scenario, each followed by a rebuild and the oracle */
  rounds: number;
  log?: (line: string) => void;
}

export interface PropertyResult {
  builds: number;
  mutations: number;
  hitsChecked: number;
  failedBuilds: number;
  stale: Array<VerifyDifference & { seed: number; scenario: number; round: number; history: string[] }>;
}

/** Run the property; never throws for a stale hit (the caller asserts on `stale`). */
export async function runCacheProperty(opts: PropertyOptions): Promise<PropertyResult> {
  const log = opts.log ?? (() => undefined);
  const res: PropertyResult = { builds: 0, mutations: 0, hitsChecked: 0, failedBuilds: 0, stale: [] };
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'kiln-property-'));
  try {
    for (let sc = opts.firstScenario ?? 0; sc < (opts.firstScenario ?? 0) + opts.scenarios; sc++) {
      const r = rand(opts.seed * 1000 + sc);
      const ctx = path.join(work, `ctx${sc}`);
      fs.mkdirSync(ctx);
      makeContext(r, ctx);
      const dockerfile = makeDockerfile(r);
      fs.writeFileSync(path.join(ctx, 'Dockerfile'), dockerfile);
      const state = await openState({ root: path.join(work, `root${sc}`) });
      try {
        await importRootfs(state, { source: busyboxRootfsTar(), name: 'busybox:latest' });
        const history: string[] = [`dockerfile:\n${dockerfile}`];
        for (let round = 0; round <= opts.rounds; round++) {
          if (round > 0) {
            const n = 1 + r.int(3);
            for (let i = 0; i < n; i++) history.push(mutate(r, ctx));
            res.mutations += n;
          }
          await buildAndVerify({ state, ctx, res, seed: opts.seed, scenario: sc, round, history, log });
        }
      } finally {
        state.close();
      }
    }
  } finally {
    execFileSync('sh', ['-c', `grep -o " ${work}/[^ ]*" /proc/self/mounts | xargs -r -n1 umount -l`]);
    fs.rmSync(work, { recursive: true, force: true });
  }
  return res;
}

async function buildAndVerify(a: { state: State; ctx: string; res: PropertyResult; seed: number; scenario: number; round: number; history: string[]; log: (l: string) => void }): Promise<void> {
  const request: BuildRequest = { state: a.state, contextDir: a.ctx, tags: [], buildArgs: {}, progress: createProgress('quiet') };
  let result;
  try {
    result = await runBuild(request);
    a.res.builds++;
  } catch (err) {
    a.res.builds++;
    a.res.failedBuilds++;
    const code = (err as { code?: string }).code;
    // a bad source (deleted, dangling link) may fail the build, but only with a user error, never an internal one
    if (!code || code === 'ERR_KILN_INTERNAL') throw new Error(`seed ${a.seed} scenario ${a.scenario} round ${a.round}: internal error ${String(err)}\n${a.history.join('\n')}`);
    a.log(`seed ${a.seed} scenario ${a.scenario} round ${a.round}: build failed (${code})`);
    return;
  }
  const report = await verifyBuild({ state: a.state, request, result });
  a.res.builds += report.hits > 0 ? (report.stale.length > 0 || report.nondeterministicSteps > 0 ? 2 : 1) : 0;
  a.res.hitsChecked += report.hits;
  for (const d of report.stale) a.res.stale.push({ ...d, seed: a.seed, scenario: a.scenario, round: a.round, history: [...a.history] });
  a.log(`seed ${a.seed} scenario ${a.scenario} round ${a.round}: ${report.hits} hits, ${report.verified} verified, ${report.stale.length} stale`);
}
