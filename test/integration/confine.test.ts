/**
 * RUN confined as Docker confines it, checked from inside real RUN steps: seccomp filter and no_new_privs on, new
 * namespaces and mounts refused, and the per-step limits (-m, --pids-limit, -c, --step-timeout, --build-timeout,
 * --disk-limit) enforced with an error that names the limit.
 */
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, lstatSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { build, cleanup, imageFiles, integrationBlocker, kilnBin, newContext, newRoot, requireIntegration, waitForOutput } from '../helpers/kiln.js';
import { openState, runBuild } from '../../src/engine/index.js';
import { createProgress } from '../../src/progress/index.js';

/** Files under `dir` whose bytes contain `needle`; `sameDevice` skips other filesystems mounted below (a tmpfs). */
function filesContaining(dir: string, needle: string, sameDevice: boolean): string[] {
  const dev = lstatSync(dir).dev;
  const hits: string[] = [];
  const walk = (p: string): void => {
    const st = lstatSync(p, { throwIfNoEntry: false });
    if (!st || (sameDevice && st.dev !== dev)) return;
    if (st.isDirectory()) for (const n of readdirSync(p)) walk(path.join(p, n));
    else if (st.isFile() && readFileSync(p).includes(needle)) hits.push(p);
  };
  walk(dir);
  return hits;
}

/** Mount points (from /proc/self/mounts) under `dir`. */
function mountsUnder(dir: string): string[] {
  return readFileSync('/proc/self/mounts', 'utf8').split('\n').map((l) => l.split(' ')[1] ?? '').filter((m) => m.startsWith(`${dir}/`));
}

describe('RUN confinement', { concurrency: false }, () => {
  let root = '';
  const dirs: string[] = [];
  before(async () => {
    if (integrationBlocker()) return;
    root = await newRoot();
    dirs.push(root);
  });
  after(async () => {
    if (dirs.length) await cleanup(...dirs);
  });
  const run = async (dockerfile: string, extra: string[] = []): Promise<Awaited<ReturnType<typeof build>> & { ms: number }> => {
    const ctx = await newContext({ Dockerfile: dockerfile });
    dirs.push(ctx);
    const t0 = Date.now();
    const r = await build(root, ctx, ['--no-cache', ...extra]);
    return { ...r, ms: Date.now() - t0 };
  };

  test('seccomp filter and no_new_privs; unshare, mount and namespace clones refused', async (t) => {
    if (!requireIntegration(t)) return;
    const r = await run(
      'FROM busybox\nRUN grep -E "^(Seccomp|NoNewPrivs):" /proc/self/status | tr -d "\\t" | sed "s/^/got-/"; ' +
        'unshare -U true 2>/dev/null; echo got-unshare-U=$?; unshare -m true 2>/dev/null; echo got-unshare-m=$?; ' +
        'mkdir -p /tmp/m && mount -t tmpfs t /tmp/m 2>/dev/null; echo got-mount=$?; echo got-done\n',
    );
    assert.equal(r.code, 0, r.stderr);
    const got: string[] = (r.stdout + r.stderr).match(/got-[^\s]+/g) ?? [];
    assert.ok(got.includes('got-Seccomp:2'), got.join(' '));
    assert.ok(got.includes('got-NoNewPrivs:1'), got.join(' '));
    assert.ok(got.includes('got-unshare-U=1'), got.join(' '));
    assert.ok(got.includes('got-unshare-m=1'), got.join(' '));
    assert.ok(got.includes('got-mount=1') || got.includes('got-mount=255'), got.join(' '));
    assert.ok(got.includes('got-done'));
  });

  test('a memory-hungry step is killed at its limit with an error naming it; a modest one passes', async (t) => {
    if (!requireIntegration(t)) return;
    const kiln = '/sys/fs/cgroup/memory/kiln';
    const cgroups = (): string[] => (existsSync(kiln) ? readdirSync(kiln, { withFileTypes: true }).filter((e) => e.isDirectory()).map((e) => e.name) : []);
    const before0 = new Set(cgroups());
    const hog = await run('FROM busybox\nRUN x=$(head -c 300000000 /dev/zero | tr "\\0" a); echo ${#x}\n', ['-m', '64m']);
    assert.equal(hog.code, 1, hog.stderr);
    assert.match(hog.stderr, /Dockerfile:2: .*used more than its memory limit of 64 MiB and was killed \(-m\/--memory\)/);
    assert.doesNotMatch(hog.stderr, /at .*\.js:\d+/);
    const ok = await run('FROM busybox\nRUN x=$(head -c 5000000 /dev/zero | tr "\\0" a); echo got-${#x}\n', ['-m', '64m']);
    assert.equal(ok.code, 0, ok.stderr);
    assert.match(ok.stdout + ok.stderr, /got-5000000/);
    // the cgroups kiln made for the runs are gone
    assert.deepEqual(cgroups().filter((n) => !before0.has(n)), [], 'a memory cgroup was left behind');
  });

  test('pids and cpu shares reach the step\'s cgroup', async (t) => {
    if (!requireIntegration(t)) return;
    const cg = '/sys/fs/cgroup';
    if (!existsSync(path.join(cg, 'pids'))) {
      // cgroup v2: one hierarchy
      const r = await run('FROM busybox\nRUN echo got-$(cat /sys/fs/cgroup/pids.max)\n', ['--pids-limit', '40']);
      assert.match(r.stdout + r.stderr, /got-40/);
      return;
    }
    const r = await run('FROM busybox\nRUN echo got-$(cat /sys/fs/cgroup/pids/pids.max)-$(cat /sys/fs/cgroup/cpu/cpu.shares)\n', ['--pids-limit', '40', '-c', '512']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout + r.stderr, /got-40-512/);
  });

  test('a step past its timeout is stopped; a build past its timeout is stopped; both named', async (t) => {
    if (!requireIntegration(t)) return;
    const step = await run('FROM busybox\nRUN sleep 60\n', ['--step-timeout', '2s']);
    assert.equal(step.code, 1);
    assert.match(step.stderr, /Dockerfile:2: RUN sleep 60: it ran longer than its time limit of 2 s and was stopped \(--step-timeout\)/);
    assert.ok(step.ms < 30_000, `took ${step.ms} ms`);
    const whole = await run('FROM busybox\nRUN sleep 1\nRUN sleep 1 && echo a\nRUN sleep 60\n', ['--build-timeout', '4s']);
    assert.equal(whole.code, 1);
    assert.match(whole.stderr, /the build ran longer than its time limit of 4 s and was stopped \(--build-timeout\)/);
    assert.ok(whole.ms < 30_000, `took ${whole.ms} ms`);
  });

  test('a disk-filling step is stopped at the build\'s disk limit; a step under it passes', async (t) => {
    if (!requireIntegration(t)) return;
    const fill = await run('FROM busybox\nRUN dd if=/dev/zero of=/big bs=1M count=2000 2>/dev/null; sleep 30\n', ['--disk-limit', '50m']);
    assert.equal(fill.code, 1);
    assert.match(fill.stderr, /Dockerfile:2: .*wrote more than its disk limit of 50 MiB and the step was stopped \(--disk-limit\)/);
    assert.ok(fill.ms < 30_000, `took ${fill.ms} ms`);
    // the limit counts the whole build: 30 MiB then 30 MiB more passes 50 MiB
    const two = await run('FROM busybox\nRUN dd if=/dev/zero of=/a bs=1M count=30 2>/dev/null\nRUN dd if=/dev/zero of=/b bs=1M count=30 2>/dev/null; sleep 5\n', ['--disk-limit', '50m']);
    assert.equal(two.code, 1, two.stderr);
    assert.match(two.stderr, /Dockerfile:3: /);
    const small = await run('FROM busybox\nRUN dd if=/dev/zero of=/a bs=1M count=10 2>/dev/null\n', ['--disk-limit', '50m']);
    assert.equal(small.code, 0, small.stderr);
  });

  test('a secret lives on a tmpfs of kiln\'s own while the step runs; after a SIGKILL the next start unmounts it: no byte on disk', async (t) => {
    if (!requireIntegration(t)) return;
    const value = `kiln-secret-${randomBytes(12).toString('hex')}`;
    const ctx = await newContext({ Dockerfile: 'FROM busybox\nRUN --mount=type=secret,id=s test -s /run/secrets/s && echo READY-$((1+1)) && sleep 60\n', 's.txt': value });
    dirs.push(ctx);
    const child = spawn(kilnBin, ['build', '--root', root, '--progress=plain', '--no-cache', '--secret', `id=s,src=${path.join(ctx, 's.txt')}`, ctx], { stdio: ['ignore', 'pipe', 'pipe'] });
    await waitForOutput(child, 'READY-2');
    const secretMounts = mountsUnder(path.join(root, 'tmp')).filter((m) => path.basename(m).startsWith('secret-'));
    assert.equal(secretMounts.length, 1, `one secret tmpfs: ${secretMounts.join(' ')}`);
    const line = readFileSync('/proc/self/mounts', 'utf8').split('\n').find((l) => l.split(' ')[1] === secretMounts[0]);
    assert.match(line ?? '', / tmpfs /);
    assert.deepEqual(filesContaining(root, value, true), [], 'a secret byte is on the disk of the state root');
    child.kill('SIGKILL');
    await new Promise((r) => child.once('close', r));
    const next = await run('FROM busybox\nRUN true\n');
    assert.equal(next.code, 0, next.stderr);
    assert.deepEqual(mountsUnder(path.join(root, 'tmp')), [], 'a secret tmpfs is still mounted after the next start');
    assert.deepEqual(filesContaining(root, value, false), [], 'a secret byte is under the state root after the next start');
  });

  test('ARG named like a secret: warned at build time, and the cache records keep only a digest of its value', async (t) => {
    if (!requireIntegration(t)) return;
    const value = `argval-${randomBytes(10).toString('hex')}`;
    const ctx = await newContext({ Dockerfile: 'FROM busybox\nARG API_TOKEN\nARG PLAIN=1\nRUN test -n "$API_TOKEN" && touch /done\n' });
    dirs.push(ctx);
    const r = await build(root, ctx, ['--build-arg', `API_TOKEN=${value}`]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr + r.stdout, /SecretsUsedInArgOrEnv: .*ARG "API_TOKEN".*\(Dockerfile:2\)/);
    assert.doesNotMatch(r.stderr + r.stdout, /SecretsUsedInArgOrEnv: .*PLAIN/);
    for (const f of ['metadata.db', 'metadata.db-wal']) {
      const p = path.join(root, f);
      if (existsSync(p)) assert.ok(!readFileSync(p).includes(value), `${f} holds the build-arg value`);
    }
    assert.deepEqual(filesContaining(root, value, false), [], 'the build-arg value is stored under the state root');
    // the digest still keys the step: another value misses, the same value hits
    const again = await build(root, ctx, ['--build-arg', `API_TOKEN=${value}`]);
    assert.equal(again.code, 0, again.stderr);
    assert.equal(again.meta['kiln.steps'].at(-1)?.cached, true);
    const other = await build(root, ctx, ['--build-arg', `API_TOKEN=${value}x`]);
    assert.equal(other.meta['kiln.steps'].at(-1)?.cached, false);
  });

  test('--security=insecure: refused by default (the CLI), unconfined where the engine option allowInsecure allows it', async (t) => {
    if (!requireIntegration(t)) return;
    const df = 'FROM busybox\nRUN --security=insecure grep -E "^(Seccomp|NoNewPrivs):" /proc/self/status | tr -d "\\t" > /status\nRUN grep -E "^(Seccomp|NoNewPrivs):" /proc/self/status | tr -d "\\t" > /status-after\n';
    const refused = await run(df);
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /Dockerfile:2: RUN --security=insecure is not allowed/);
    assert.match(refused.stderr, /allowInsecure/);
    const ctx = await newContext({ Dockerfile: df });
    dirs.push(ctx);
    const s = await openState({ root });
    let digest = '';
    try {
      digest = (await runBuild({ state: s, contextDir: ctx, tags: [], buildArgs: {}, progress: createProgress('quiet'), allowInsecure: true })).imageDigest;
    } finally {
      s.close();
    }
    const files = await imageFiles(root, digest);
    assert.equal(files.get('status')?.content, 'NoNewPrivs:0\nSeccomp:0\n');
    assert.equal(files.get('status-after')?.content, 'NoNewPrivs:1\nSeccomp:2\n', 'the next step is confined again');
  });
});
