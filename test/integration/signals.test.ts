// SIGTERM and SIGINT stop a CLI build at any point, and the store stays consistent (issue 14, item 6): the build
// exits non-zero with one sentence (or, before kiln's handlers are installed, by the signal itself), history says
// `interrupted`, no overlay mount is left, and the next build succeeds reusing the steps that finished.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { build, cleanup, kilnBin, newContext, newRoot, requireIntegration } from '../helpers/kiln.js';

interface Stopped { code: number | null; signal: NodeJS.Signals | null; out: string; stopped: boolean }

/** Start a build; send `sig` when `when(out)` first holds or after `afterMs`; wait (at most 60 s) for it to end. */
function signalledBuild(o: { root: string; ctx: string; sig: NodeJS.Signals; afterMs?: number; when?: RegExp }): Promise<Stopped> {
  return new Promise((resolve) => {
    const p = spawn(kilnBin, ['build', '--root', o.root, '--progress=plain', o.ctx], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let sent = false;
    const send = (): void => {
      if (sent) return;
      sent = true;
      p.kill(o.sig);
    };
    const onData = (c: Buffer): void => {
      out += c.toString();
      if (o.when && o.when.test(out)) send();
    };
    p.stdout.on('data', onData);
    p.stderr.on('data', onData);
    const timer = o.afterMs !== undefined ? setTimeout(send, o.afterMs) : undefined;
    // not a speed assertion: a build that has not stopped a minute after the signal is hung
    const hang = setTimeout(() => p.kill('SIGKILL'), 60_000);
    p.on('close', (code, signal) => {
      if (timer) clearTimeout(timer);
      clearTimeout(hang);
      resolve({ code, signal, out, stopped: signal !== 'SIGKILL' });
    });
  });
}

test('SIGTERM and SIGINT stop a build at any point, leaving the store consistent', { timeout: 900_000 }, async (t) => {
  if (!requireIntegration(t)) return;
  const root = await newRoot();
  const ctx = await newContext({
    Dockerfile: 'FROM busybox\nRUN echo one > /one\nARG SLEEP=100\nRUN sleep $SLEEP\nRUN echo done > /done\n',
  });
  try {
    const cases: Array<{ sig: NodeJS.Signals; afterMs?: number; when?: RegExp }> = [
      { sig: 'SIGTERM', when: /RUN sleep/ },
      { sig: 'SIGINT', when: /RUN sleep/ },
      { sig: 'SIGTERM', when: /RUN echo one/ },
      { sig: 'SIGINT', afterMs: 300 },
      { sig: 'SIGTERM', afterMs: 800 },
      { sig: 'SIGINT', afterMs: 1500 },
    ];
    for (const c of cases) {
      const r = await signalledBuild({ root, ctx, ...c });
      const what = `${c.sig} ${c.when ?? `${c.afterMs} ms`}`;
      assert.ok(r.stopped, `${what}: the build did not stop:\n${r.out}`);
      if (r.signal === null) {
        assert.equal(r.code, 1, `${what}: ${r.out}`);
        assert.match(r.out, new RegExp(`error: build interrupted by ${c.sig}`));
      } else assert.equal(r.signal, c.sig, `${what}: stopped by the signal before kiln's handlers were installed`);
      for (const bad of [/Cannot read properties/, /^\s+at .+[(:]\d+/m, /TypeError/]) assert.doesNotMatch(r.out, bad, `${what}:\n${r.out}`);
      const mounts = readFileSync('/proc/self/mountinfo', 'utf8').split('\n').filter((l) => l.includes(` ${root}/`) && / - overlay /.test(l));
      assert.deepEqual(mounts, [], `${what}: no overlay mount is left under the root`);
    }
    const next = await build(root, ctx, ['--build-arg', 'SLEEP=0']);
    assert.equal(next.code, 0, next.stderr);
    assert.ok(next.meta['kiln.steps'].find((s) => s.name.includes('RUN echo one'))?.cached, 'the step that finished is reused');
    const db = new Database(path.join(root, 'metadata.db'), { readonly: true });
    try {
      const rows = db.prepare('SELECT status, COUNT(*) AS n FROM builds GROUP BY status').all() as Array<{ status: string; n: number }>;
      const by = Object.fromEntries(rows.map((r) => [r.status, r.n]));
      assert.equal(by.running, undefined, `no build is left running: ${JSON.stringify(by)}`);
      assert.ok((by.interrupted ?? 0) >= 3, `the stopped builds are interrupted in history: ${JSON.stringify(by)}`);
      assert.equal((db.pragma('integrity_check') as Array<{ integrity_check: string }>)[0]!.integrity_check, 'ok');
    } finally {
      db.close();
    }
  } finally {
    await cleanup(root, ctx);
  }
});
