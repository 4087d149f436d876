// A killed build leaves the store consistent (issue 14, item 6): 50 SIGKILLs at random moments of a small build,
// alternating between the node process and its whole process group. After each kill the next build succeeds and
// reuses every step the killed build reported done; every blob verifies (sha256 of every file under content/blobs
// matches its name), `PRAGMA integrity_check` is ok, no overlay mount is left under the root, and history has no
// build stuck in `running` (the killed ones are `interrupted`).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { build, cleanup, kilnBin, newContext, newRoot, requireIntegration } from '../helpers/kiln.js';

const KILLS = 50;

/** Start a build in its own process group; kill it (pid or group) with SIGKILL after `afterMs`. */
function killedBuild(o: { root: string; ctx: string; n: number; afterMs: number; group: boolean }): Promise<string> {
  return new Promise((resolve) => {
    const p = spawn(kilnBin, ['build', '--root', o.root, '--progress=plain', '--build-arg', `N=${o.n}`, o.ctx], { stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    let out = '';
    p.stdout.on('data', (c: Buffer) => (out += c.toString()));
    p.stderr.on('data', (c: Buffer) => (out += c.toString()));
    const timer = setTimeout(() => {
      try {
        process.kill(o.group ? -p.pid! : p.pid!, 'SIGKILL');
      } catch {
        /* already finished */
      }
    }, o.afterMs);
    p.on('close', () => {
      clearTimeout(timer);
      // after a kill of the node process alone, what it started (runc and the container) is left running, as after
      // a crash: the next kiln start must cope with it
      resolve(out);
    });
  });
}

/** Step names (`[2/6] RUN ...`) the plain progress reported DONE. */
function doneSteps(out: string): string[] {
  const names = new Map<string, string>();
  const done: string[] = [];
  for (const line of out.split('\n')) {
    const start = /^#(\d+) (\[.*)$/.exec(line);
    if (start) names.set(start[1]!, start[2]!);
    const fin = /^#(\d+) DONE/.exec(line);
    if (fin && names.has(fin[1]!)) done.push(names.get(fin[1]!)!);
  }
  return done;
}

function verifyStore(root: string): void {
  const dir = path.join(root, 'content', 'blobs', 'sha256');
  for (const name of readdirSync(dir)) {
    const got = createHash('sha256').update(readFileSync(path.join(dir, name))).digest('hex');
    assert.equal(got, name, `blob ${name} does not verify`);
  }
  const db = new Database(path.join(root, 'metadata.db'), { readonly: true });
  try {
    assert.equal((db.pragma('integrity_check') as Array<{ integrity_check: string }>)[0]!.integrity_check, 'ok');
    const running = db.prepare("SELECT id FROM builds WHERE status = 'running'").all();
    assert.deepEqual(running, [], 'no build is stuck in running');
  } finally {
    db.close();
  }
  const mounts = readFileSync('/proc/self/mountinfo', 'utf8').split('\n').filter((l) => l.includes(` ${root}/`) && / - overlay /.test(l));
  assert.deepEqual(mounts, [], 'no overlay mount is left under the root');
}

test(`${KILLS} SIGKILLs at random moments of a build leave a consistent store`, { timeout: 1_800_000 }, async (t) => {
  if (!requireIntegration(t)) return;
  const root = await newRoot();
  const ctx = await newContext({
    Dockerfile: [
      'FROM busybox',
      'RUN head -c 2000000 /dev/urandom > /base',
      'ARG N',
      'RUN echo "$N" > /n && head -c 1000000 /dev/urandom > /r1',
      'COPY f.txt /f.txt',
      'RUN sleep 0.2 && cat /n /f.txt > /both',
      'RUN head -c 500000 /dev/urandom > /r2 && echo "$N" >> /both',
      '',
    ].join('\n'),
    'f.txt': 'file\n',
  });
  let interrupted = 0;
  try {
    // one full build first: the base step is then cached, and the timing of a build is known
    const first = await build(root, ctx, ['--build-arg', 'N=first']);
    assert.equal(first.code, 0, first.stderr);
    const t0 = Date.now();
    const again = await build(root, ctx, ['--build-arg', 'N=warm']);
    assert.equal(again.code, 0, again.stderr);
    const span = Math.max(1000, Date.now() - t0);
    for (let i = 0; i < KILLS; i++) {
      const group = i % 2 === 1;
      const afterMs = Math.floor(Math.random() * span * 1.2);
      const out = await killedBuild({ root, ctx, n: i, afterMs, group });
      const done = doneSteps(out);
      const next = await build(root, ctx, ['--build-arg', `N=${i}`]);
      assert.equal(next.code, 0, `build after kill #${i} (${group ? 'group' : 'node'} at ${afterMs} ms): ${next.stderr}`);
      for (const name of done) {
        const st = next.meta['kiln.steps'].find((s) => s.name === name);
        assert.ok(st?.cached, `kill #${i}: step "${name}" finished before the kill but was not reused`);
      }
      verifyStore(root);
      const db = new Database(path.join(root, 'metadata.db'), { readonly: true });
      interrupted = (db.prepare("SELECT COUNT(*) AS n FROM builds WHERE status = 'interrupted'").get() as { n: number }).n;
      db.close();
    }
    t.diagnostic(`${interrupted} of ${KILLS} builds were killed before they finished (history: interrupted)`);
    assert.ok(interrupted > 0, 'some kills landed mid-build');
    assert.ok(existsSync(path.join(root, 'metadata.db')));
  } finally {
    await cleanup(root, ctx);
  }
});
