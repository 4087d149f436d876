// Operating the cache (issue 7): du totals, prune (budget, confirmation, filters, racing a build), automatic GC,
// history, why a step missed (--explain / missReason) and the kiln check cache advisor. Real builds, real runc.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { build, cleanup, imageFiles, integrationBlocker, kiln, kilnSync, newContext, newRoot, requireIntegration, spawnKiln } from '../helpers/kiln.js';

/** Bytes on disk under a directory, as `du` counts them (allocated blocks, hardlinks once). */
function diskBytes(dir: string): number {
  const r = spawnSync('du', ['-sB1', dir], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  return Number(r.stdout.split(/\s+/)[0]);
}

function sha256File(file: string): string {
  return `sha256:${createHash('sha256').update(readFileSync(file)).digest('hex')}`;
}

/** Unpack an OCI layout tar and check that every blob the index reaches is there with the right digest and size. */
function verifyOciTar(file: string): number {
  const dir = mkdtempSync(path.join(tmpdir(), 'kiln-verify-'));
  try {
    const x = spawnSync('tar', ['-xf', file, '-C', dir], { encoding: 'utf8' });
    assert.equal(x.status, 0, x.stderr);
    let blobs = 0;
    const check = (d: { digest: string; size: number }): Buffer => {
      const p = path.join(dir, 'blobs', 'sha256', d.digest.slice(7));
      assert.ok(existsSync(p), `blob ${d.digest} missing from ${file}`);
      assert.equal(sha256File(p), d.digest, `blob ${d.digest} is corrupt`);
      assert.equal(readFileSync(p).length, d.size);
      blobs++;
      return readFileSync(p);
    };
    const visit = (d: { digest: string; size: number; mediaType?: string }): void => {
      const m = JSON.parse(check(d).toString()) as { manifests?: Array<{ digest: string; size: number }>; config?: { digest: string; size: number }; layers?: Array<{ digest: string; size: number }> };
      for (const c of m.manifests ?? []) visit(c);
      if (m.config) check(m.config);
      for (const l of m.layers ?? []) check(l);
    };
    const index = JSON.parse(readFileSync(path.join(dir, 'index.json'), 'utf8')) as { manifests: Array<{ digest: string; size: number }> };
    for (const m of index.manifests) visit(m);
    if (spawnSync('skopeo', ['--version']).status === 0) {
      const s = spawnSync('skopeo', ['--insecure-policy', 'inspect', `oci-archive:${file}`], { encoding: 'utf8' });
      assert.equal(s.status, 0, `skopeo inspect ${file}: ${s.stderr}`);
    }
    return blobs;
  } finally {
    spawnSync('rm', ['-rf', dir]);
  }
}

function verifyImageExports(root: string, work: string, name: string): void {
  const out = path.join(work, `${name.replace(/[^\w]/g, '_')}.tar`);
  const r = kilnSync(['save', '--root', root, name, '-o', out]);
  assert.equal(r.code, 0, `save ${name}: ${r.stderr}`);
  assert.ok(verifyOciTar(out) >= 3);
}

function duJson(root: string, extra: string[] = []): { rows: Array<{ type: string; id: string; size: number }>; total: number; reclaimable: number } {
  const r = kilnSync(['du', '--root', root, '--format', 'json', ...extra]);
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout) as { rows: Array<{ type: string; id: string; size: number }>; total: number; reclaimable: number };
}

function setConfig(root: string, cfg: unknown): void {
  writeFileSync(path.join(root, 'config.json'), JSON.stringify(cfg));
}

describe('kiln du and prune', { concurrency: false }, () => {
  let root = '';
  let work = '';
  before(async () => {
    if (integrationBlocker()) return;
    root = await newRoot();
    work = mkdtempSync(path.join(tmpdir(), 'kiln-operate-'));
    setConfig(root, { gc: { enabled: false } });
  });
  after(async () => {
    if (root) await cleanup(root, work);
  });

  test('du totals equal the bytes on disk; prune --keep-storage 50MB gets there and images still export', async (t) => {
    if (!requireIntegration(t)) return;
    const ctx = await newContext({ Dockerfile: 'FROM busybox\nARG N\nRUN head -c 20000000 /dev/urandom > /big && echo "$N" > /n\n' });
    for (const n of ['1', '2', '3']) {
      const r = await build(root, ctx, ['--build-arg', `N=${n}`, ...(n === '1' ? ['-t', 'keep:1'] : [])]);
      assert.equal(r.code, 0, r.stderr);
    }
    const du = duJson(root);
    const onDisk = diskBytes(root);
    assert.ok(Math.abs(du.total - onDisk) <= onDisk * 0.01, `du Total ${du.total} vs du -sB1 ${onDisk}`);
    assert.ok(onDisk > 100_000_000, `three 20MB layers (blob + unpacked) should take over 100MB, got ${onDisk}`);
    const table = kilnSync(['du', '--root', root]);
    assert.match(table.stdout, /^Reclaimable:\s+\S+$/m);
    assert.match(table.stdout, /^Total:\s+\S+$/m);
    assert.match(table.stdout, /cache .* RUN head -c 20000000/);
    assert.match(table.stdout, /shared .*busybox:latest/);

    const p = kilnSync(['prune', '--root', root, '--keep-storage', '50MB', '-f']);
    assert.equal(p.code, 0, p.stderr);
    assert.match(p.stdout, /Total reclaimed space: [1-9]/);
    const after = diskBytes(root);
    assert.ok(after <= 50_000_000, `store is ${after} bytes after prune --keep-storage 50MB`);
    const du2 = duJson(root);
    assert.ok(Math.abs(du2.total - after) <= after * 0.01, `du Total ${du2.total} vs du -sB1 ${after}`);
    const images = JSON.parse(kilnSync(['images', '--root', root, '--format', 'json']).stdout) as Array<{ name: string }>;
    assert.deepEqual(images.map((i) => i.name).sort(), ['busybox:latest', 'keep:1']);
    for (const img of images) verifyImageExports(root, work, img.name);
    // the kept image is still a base for builds
    const again = await build(root, ctx, ['--build-arg', 'N=1']);
    assert.equal(again.code, 0, again.stderr);
  });

  test('prune asks first: closed stdin refuses, "n" keeps everything, "y" prunes', async (t) => {
    if (!requireIntegration(t)) return;
    const ctx = await newContext({ Dockerfile: 'FROM busybox\nRUN echo confirm > /c\n' });
    assert.equal((await build(root, ctx)).code, 0);
    const before = duJson(root).rows.length;
    const closed = kilnSync(['prune', '--root', root]);
    assert.notEqual(closed.code, 0);
    assert.match(closed.stderr, /Are you sure you want to continue\? \[y\/N\]/);
    assert.match(closed.stderr, /stdin is closed/);
    assert.match(closed.stderr, /-f\/--force/);
    assert.equal(duJson(root).rows.length, before);
    const no = kilnSync(['prune', '--root', root], { input: 'n\n' });
    assert.equal(no.code, 0);
    assert.match(no.stderr, /Nothing removed/);
    assert.equal(duJson(root).rows.length, before);
    const yes = kilnSync(['prune', '--root', root], { input: 'y\n' });
    assert.equal(yes.code, 0, yes.stderr);
    assert.match(yes.stdout, /Deleted build cache objects/);
    assert.ok(duJson(root).rows.length < before);
  });

  test('--help states each space option; --filter type=cache-mount clears only cache mounts', async (t) => {
    if (!requireIntegration(t)) return;
    const help = kilnSync(['prune', '--help']).stdout;
    assert.match(help, /--keep-storage SIZE\s+the older name of --max-used-space: it means "let the cache keep at most SIZE",\s+NOT "keep SIZE of disk free"/);
    assert.match(help, /--max-used-space SIZE\s+delete until kiln's state directory uses at most SIZE in total/);
    assert.match(help, /--min-free-space SIZE\|PCT\s+delete until the disk holding the state directory has at least SIZE/);
    assert.match(help, /--reserved-space SIZE\s+a floor: never delete the cache below SIZE/);
    const ctx = await newContext({ Dockerfile: 'FROM busybox\nRUN --mount=type=cache,id=dl,target=/cache head -c 300000 /dev/urandom > /cache/blob && echo done > /done\n' });
    assert.equal((await build(root, ctx)).code, 0);
    const mounts = duJson(root, ['--filter', 'type=cache-mount']).rows;
    assert.equal(mounts.length, 1);
    assert.equal(mounts[0]!.id, 'dl');
    assert.ok(mounts[0]!.size >= 300_000);
    const records = duJson(root, ['--filter', 'type=cache']).rows.length;
    const plain = kilnSync(['prune', '--root', root, '--filter', 'type=cache', '--filter', 'id=zzzz', '-f']);
    assert.equal(plain.code, 0, plain.stderr);
    const r = kilnSync(['prune', '--root', root, '--filter', 'type=cache-mount', '-f']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /cache-mount/);
    assert.equal(duJson(root, ['--filter', 'type=cache-mount']).rows.length, 0);
    assert.equal(duJson(root, ['--filter', 'type=cache']).rows.length, records, 'cache records stay');
    const again = await build(root, ctx);
    assert.equal(again.code, 0, again.stderr);
    assert.ok(again.meta['kiln.steps'].every((s) => s.cached), 'records survived, so the rebuild is cached');
    const bad = kilnSync(['prune', '--root', root, '--filter', 'type=image', '-f']);
    assert.notEqual(bad.code, 0);
    assert.match(bad.stderr, /unknown type/);
  });

  test('prune --all racing a running build: the build succeeds and its output verifies', async (t) => {
    if (!requireIntegration(t)) return;
    const ctx = await newContext({ Dockerfile: 'FROM busybox\nRUN echo base > /base\nARG N\nRUN sleep 2 && head -c 500000 /dev/urandom > /r && echo "$N" > /n\n' });
    assert.equal((await build(root, ctx, ['--build-arg', 'N=old'])).code, 0, 'warm build (its records become prune targets)');
    const out = path.join(work, 'race.tar');
    const metaFile = path.join(work, 'race-meta.json');
    const child = spawnKiln(['build', '--root', root, '--progress=plain', '--build-arg', 'N=race', '-t', 'race:1', '--output', `type=oci,dest=${out}`, '--metadata-file', metaFile, ctx]);
    let stderr = '';
    child.stderr!.on('data', (c: Buffer) => (stderr += c.toString()));
    const exited = new Promise<number>((resolve) => child.on('close', (code) => resolve(code ?? -1)));
    let done = false;
    void exited.then(() => (done = true));
    // prune once the build has reused the warm build's layer and is running its slow step over it
    while (!done && !/RUN sleep 2/.test(stderr)) await new Promise((r) => setTimeout(r, 20));
    let prunes = 0;
    let removedSomething = false;
    while (!done) {
      const p = await kiln(['prune', '--root', root, '--all', '-f']);
      assert.equal(p.code, 0, p.stderr);
      if (/Deleted build cache objects/.test(p.stdout)) removedSomething = true;
      prunes++;
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.equal(await exited, 0, stderr);
    const meta = JSON.parse(readFileSync(metaFile, 'utf8')) as { 'kiln.steps': Array<{ name: string; cached: boolean }> };
    assert.equal(meta['kiln.steps'].find((s) => s.name.includes('RUN echo base'))?.cached, true, 'the race build reused a layer prune --all targets');
    assert.ok(prunes >= 2, `prune ran ${prunes} times during the build`);
    assert.ok(removedSomething, 'prune --all removed the warm build while the race build ran');
    assert.ok(verifyOciTar(out) >= 4);
    const digest = JSON.parse(kilnSync(['images', '--root', root, '--format', 'json']).stdout).find((i: { name: string }) => i.name === 'race:1').digest as string;
    const files = await imageFiles(root, digest);
    assert.equal(files.get('base')?.content, 'base\n');
    assert.equal(files.get('n')?.content, 'race\n');
    const final = kilnSync(['prune', '--root', root, '--all', '-f']);
    assert.equal(final.code, 0, final.stderr);
    verifyImageExports(root, work, 'race:1');
  });
});

describe('automatic GC and history retention', { concurrency: false }, () => {
  let root = '';
  let ctx = '';
  before(async () => {
    if (integrationBlocker()) return;
    root = await newRoot();
    ctx = await newContext({ Dockerfile: 'FROM busybox\nCOPY f /f\n', f: 'x' });
  });
  after(async () => {
    if (root) await cleanup(root, ctx);
  });

  test('30 builds with changing content stay under a small budget', async (t) => {
    if (!requireIntegration(t)) return;
    const base = diskBytes(root);
    const budget = base + 3_000_000;
    setConfig(root, { gc: { maxUsedSpace: budget, minFreeSpace: 0 }, history: { maxBuilds: 10 } });
    let gcLines = 0;
    let max = 0;
    for (let i = 0; i < 30; i++) {
      writeFileSync(path.join(ctx, 'f'), createHash('sha256').update(String(i)).digest().toString('hex').repeat(3000) + String(Math.random()));
      const r = await build(root, ctx);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.meta['kiln.steps'].find((s) => s.name.includes('COPY'))?.cached, false);
      if (/^gc: removed .*freed; kiln now uses .*, limit /m.test(r.stderr)) gcLines++;
      const used = diskBytes(root);
      max = Math.max(max, used);
      assert.ok(used <= budget, `build ${i + 1}: ${used} bytes on disk, budget ${budget}`);
    }
    assert.ok(gcLines > 0, 'GC logged what it removed');
    assert.ok(max > base + 1_000_000, 'the budget was actually used');
    const ls = kilnSync(['history', 'ls', '--root', root, '--format', 'json']);
    assert.equal((JSON.parse(ls.stdout) as unknown[]).length, 10, 'history keeps history.maxBuilds builds');
  });

  test('a fully cached build skips the GC inventory while nothing changed; a new budget or new content runs it', async (t) => {
    if (!requireIntegration(t)) return;
    const markAt = (): number => (JSON.parse(readFileSync(path.join(root, 'gc-mark.json'), 'utf8')) as { at: number }).at;
    writeFileSync(path.join(ctx, 'f'), 'y'.repeat(2_000_000));
    const fresh = await build(root, ctx);
    assert.equal(fresh.code, 0, fresh.stderr);
    const first = markAt();
    const cached = await build(root, ctx);
    assert.equal(cached.code, 0, cached.stderr);
    assert.ok(cached.meta['kiln.steps'].every((s) => s.cached));
    assert.equal(markAt(), first, 'a cached build with nothing new took no inventory');
    // a smaller budget: the next cached build runs the GC, which removes the older layers to meet it
    const budget = diskBytes(root) - 300_000;
    setConfig(root, { gc: { maxUsedSpace: budget, minFreeSpace: 0 }, history: { maxBuilds: 10 } });
    const shrunk = await build(root, ctx);
    assert.equal(shrunk.code, 0, shrunk.stderr);
    assert.ok(markAt() > first, 'a changed policy runs the GC');
    assert.match(shrunk.stderr, /^gc: removed /m);
    assert.ok(diskBytes(root) <= budget, `${diskBytes(root)} bytes on disk, budget ${budget}`);
    const again = markAt();
    writeFileSync(path.join(ctx, 'f'), 'z');
    const changed = await build(root, ctx);
    assert.equal(changed.code, 0, changed.stderr);
    assert.ok(markAt() > again, 'a build that ran a step runs the GC');
  });
});

describe('why a step missed, and build history', { concurrency: false }, () => {
  let root = '';
  let ctx = '';
  const dockerfile = (env: string): string => `FROM busybox\nARG V=1\nENV E=${env}\nCOPY a.txt /a.txt\nRUN cat /a.txt > /b.txt && echo "built $V"\n`;
  const reason = (r: Awaited<ReturnType<typeof build>>, text: string): string | undefined => r.meta['kiln.steps'].find((s) => s.name.includes(text))?.missReason;
  const ids: string[] = [];
  before(async () => {
    if (integrationBlocker()) return;
    root = await newRoot();
    ctx = await newContext({ Dockerfile: dockerfile('1'), 'a.txt': 'one\n' });
    chmodSync(path.join(ctx, 'a.txt'), 0o644);
  });
  after(async () => {
    if (root) await cleanup(root, ctx);
  });
  const run = async (extra: string[] = []): Promise<Awaited<ReturnType<typeof build>>> => {
    const r = await build(root, ctx, ['--explain', ...extra]);
    assert.equal(r.code, 0, r.stderr);
    ids.push((JSON.parse(kilnSync(['history', 'ls', '--root', root, '--format', 'json']).stdout) as Array<{ id: string }>)[0]!.id);
    return r;
  };

  test('first build, file content, parent, file mode, build arg, env, skip, base digest', async (t) => {
    if (!requireIntegration(t)) return;
    const first = await run();
    assert.match(reason(first, 'COPY a.txt')!, /^never cached: first build of this target$/);
    assert.match(first.stderr, /^explain: \[3\/4\] COPY a.txt \/a.txt: never cached: first build/m);

    writeFileSync(path.join(ctx, 'a.txt'), 'two\n');
    const content = await run();
    assert.match(reason(content, 'COPY a.txt')!, /^file content changed: a\.txt \(sha256:[0-9a-f]{12} → sha256:[0-9a-f]{12}\)$/);
    assert.match(reason(content, 'RUN cat')!, /^parent step was rebuilt: \[3\/4\] COPY a\.txt \/a\.txt$/);
    assert.equal(reason(content, 'ENV E'), undefined, 'a cached step has no miss reason');

    chmodSync(path.join(ctx, 'a.txt'), 0o755);
    const mode = await run();
    assert.equal(reason(mode, 'COPY a.txt'), 'file mode changed: a.txt (0644 → 0755)');

    const arg = await run(['--build-arg', 'V=2']);
    assert.equal(arg.meta['kiln.steps'].find((s) => s.name.includes('COPY'))?.cached, true);
    // the first build used ARG V's default: the cache record holds only its digest (sha256 of "1")
    assert.equal(reason(arg, 'RUN cat'), 'build arg V changed: sha256:6b86b273ff34 → "2"');

    writeFileSync(path.join(ctx, 'Dockerfile'), dockerfile('2'));
    const env = await run(['--build-arg', 'V=2']);
    assert.equal(reason(env, 'ENV E'), 'ENV E changed: "1" → "2"');
    assert.equal(reason(env, 'RUN cat'), 'env E changed: "1" → "2"');

    const skip = await run(['--build-arg', 'V=2', '--no-cache']);
    assert.equal(reason(skip, 'RUN cat'), 'cache skipped (--no-cache)');

    const other = await newContext({ Dockerfile: 'FROM busybox\nRUN echo other > /other\n' });
    assert.equal((await build(root, other, ['-t', 'other:1'])).code, 0);
    assert.equal(kilnSync(['tag', '--root', root, 'other:1', 'busybox:latest']).code, 0);
    const baseChanged = await run(['--build-arg', 'V=2']);
    assert.match(reason(baseChanged, 'ENV E')!, /^base image digest changed: sha256:[0-9a-f]{12} → sha256:[0-9a-f]{12}$/);
    await cleanup(other);
  });

  test('history ls, inspect, logs and diff', async (t) => {
    if (!requireIntegration(t)) return;
    assert.ok(ids.length >= 7);
    const ls = kilnSync(['history', 'ls', '--root', root]);
    assert.equal(ls.code, 0, ls.stderr);
    for (const id of ids) assert.match(ls.stdout, new RegExp(`^${id} +success`, 'm'));
    const inspect = kilnSync(['history', 'inspect', '--root', root, ids[1]!]);
    assert.equal(inspect.code, 0, inspect.stderr);
    assert.match(inspect.stdout, /^Image:\s+sha256:[0-9a-f]{64}$/m);
    assert.match(inspect.stdout, /^\s+CACHED\s+\[1\/4\] FROM/m);
    assert.match(inspect.stdout, /miss: file content changed: a\.txt/);
    const withArg = kilnSync(['history', 'inspect', '--root', root, ids[3]!]);
    assert.match(withArg.stdout, /^\s+V=2$/m);
    const logs = kilnSync(['history', 'logs', '--root', root, ids[0]!]);
    assert.equal(logs.code, 0, logs.stderr);
    assert.match(logs.stdout, /^#\d+ built 1$/m);
    assert.match(logs.stdout, /^#\d+ DONE \d+\.\ds$/m);
    const diff = kilnSync(['history', 'diff', '--root', root, ids[0]!, ids[1]!]);
    assert.equal(diff.code, 0, diff.stderr);
    assert.match(diff.stdout, /~ \[3\/4\] COPY a\.txt \/a\.txt: file content changed: a\.txt/);
    assert.match(diff.stdout, /= \[2\/4\] ENV E=1/);
    const secret = await build(root, ctx, ['--build-arg', 'API_TOKEN=hunter2']);
    assert.equal(secret.code, 0, secret.stderr);
    const id = (JSON.parse(kilnSync(['history', 'ls', '--root', root, '--format', 'json']).stdout) as Array<{ id: string }>)[0]!.id;
    const redacted = kilnSync(['history', 'inspect', '--root', root, id]);
    assert.match(redacted.stdout, /API_TOKEN=\*\*\*/);
    assert.doesNotMatch(redacted.stdout, /hunter2/);
  });
});

describe('kiln check', () => {
  const BAD = '# syntax=docker/dockerfile:1\nFROM node\nWORKDIR /app\n# Copy over all files in the current directory\nCOPY . .\n# Install dependencies\nRUN npm install\n# Run build\nRUN npm build\n';
  const GOOD = '# syntax=docker/dockerfile:1\nFROM node\nWORKDIR /app\n# Copy package management files\nCOPY package.json yarn.lock .\n# Install dependencies\nRUN npm install\n# Copy over project files\nCOPY . .\n# Run build\nRUN npm build\n';

  test("Docker's order-your-layers example warns; the reordered one prints no WARN", async (t) => {
    if (!existsSync(path.join(path.dirname(new URL(import.meta.url).pathname), '..', '..', 'dist', 'cli', 'index.js'))) {
      t.skip('kiln is not built');
      return;
    }
    const files = { 'package.json': '{}', 'yarn.lock': '', 'index.js': 'console.log(1)\n' };
    const bad = await newContext({ ...files, Dockerfile: BAD });
    const good = await newContext({ ...files, Dockerfile: GOOD });
    try {
      const b = kilnSync(['check', '--no-history', bad]);
      assert.equal(b.code, 1, b.stdout + b.stderr);
      assert.match(b.stdout, /^WARN CopyBeforeDependencyInstall: "COPY \. \." copies the whole context before "RUN npm install" \(line 7\).* \(Dockerfile:5\)$/m);
      const g = kilnSync(['check', '--no-history', good]);
      assert.equal(g.code, 0, g.stdout + g.stderr);
      assert.doesNotMatch(g.stdout, /^WARN/m);
      assert.match(g.stdout, /^INFO PackageCacheMount: .*--mount=type=cache,target=\/root\/\.npm.* \(Dockerfile:7\)$/m);
    } finally {
      await cleanup(bad, good);
    }
  });
});
