// Bounded input (issue 14, item 5): hostile Dockerfiles, .dockerignore files, image names and sizes are refused at
// once with a sentence naming the file, line or limit, or built in bounded time; never a hang, a stack overflow or a
// stack trace. Real builds, real kiln.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { build, cleanup, kiln, newContext, newRoot, requireIntegration, type RunResult } from '../helpers/kiln.js';
import { openState, runBuild } from '../../src/engine/index.js';
import { createProgress } from '../../src/progress/index.js';

/** No user ever sees a programmer error or a stack frame. */
export function assertNoInternals(r: RunResult, what: string): void {
  for (const bad of [/Cannot read properties/, /^\s+at .+[(:]\d+/m, /TypeError/, /RangeError/, /Maximum call stack/]) {
    assert.doesNotMatch(r.stderr, bad, `${what}: stderr shows an internal error:\n${r.stderr}`);
  }
}

describe('bounded input', { concurrency: false }, () => {
  let root = '';
  let ctx = '';
  before(async () => {
    root = await newRoot();
    ctx = await newContext({ 'a.txt': 'a' });
  });
  after(async () => cleanup(root, ctx));

  test('a FIFO, /dev/zero or a directory as Dockerfile is refused at once, naming it', { timeout: 60_000 }, async (t) => {
    if (!requireIntegration(t)) return;
    const fifo = path.join(ctx, 'Dockerfile.fifo');
    spawnSync('mkfifo', [fifo]);
    const dir = path.join(ctx, 'Dockerfile.dir');
    mkdirSync(dir);
    for (const [file, kind] of [[fifo, /FIFO/], ['/dev/zero', /character device/], [dir, /directory/]] as const) {
      const r = await kiln(['build', '--root', root, '-f', file, ctx]);
      assert.equal(r.code, 1, r.stderr);
      assert.match(r.stderr, new RegExp(`Dockerfile "${file.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}" is .*not a regular file`));
      assert.match(r.stderr, kind);
      assertNoInternals(r, file);
    }
  });

  test('a FIFO or oversized .dockerignore is refused at once, naming it', { timeout: 60_000 }, async (t) => {
    if (!requireIntegration(t)) return;
    const c = await newContext({ Dockerfile: 'FROM busybox\nCOPY . /x\n' });
    try {
      spawnSync('mkfifo', [path.join(c, '.dockerignore')]);
      const r = await kiln(['build', '--root', root, c]);
      assert.equal(r.code, 1, r.stderr);
      assert.match(r.stderr, /\.dockerignore ".*\.dockerignore" is a FIFO/);
      assertNoInternals(r, 'fifo .dockerignore');
      spawnSync('rm', ['-f', path.join(c, '.dockerignore')]);
      spawnSync('truncate', ['-s', '5M', path.join(c, '.dockerignore')]);
      const big = await kiln(['build', '--root', root, c]);
      assert.equal(big.code, 1, big.stderr);
      assert.match(big.stderr, /\.dockerignore ".*" is larger than the limit of \d+ bytes/);
      assertNoInternals(big, 'big .dockerignore');
    } finally {
      await cleanup(c);
    }
  });

  test('*a*a*a*a*a*b in .dockerignore against a 200-character name: the build finishes and applies it', { timeout: 120_000 }, async (t) => {
    if (!requireIntegration(t)) return;
    const long = 'a'.repeat(200);
    const c = await newContext({ Dockerfile: 'FROM busybox\nCOPY . /x\nRUN ls /x > /list\n', '.dockerignore': '*a*a*a*a*a*b\n', [long]: '1', [`${long.slice(0, 190)}b`]: '2' });
    try {
      const r = await build(root, c, ['-t', 'glob:1']);
      assert.equal(r.code, 0, r.stderr);
      const run = await kiln(['run', '--root', root, '--rm', 'glob:1', 'cat', '/list']);
      assert.equal(run.code, 0, run.stderr);
      assert.ok(run.stdout.includes(long), 'the name that does not end in b is kept');
      assert.ok(!run.stdout.includes(`${long.slice(0, 190)}b`), 'the name ending in b is excluded');
    } finally {
      await cleanup(c);
    }
  });

  test('55,000 ENV lines are built (linear conversion, no stack overflow)', { timeout: 300_000 }, async (t) => {
    if (!requireIntegration(t)) return;
    const lines = ['FROM busybox'];
    for (let i = 0; i < 55_000; i++) lines.push(`ENV K${i}=v${i}`);
    lines.push('RUN test "$K54999" = v54999 && test "$K0" = v0');
    const c = await newContext({ Dockerfile: `${lines.join('\n')}\n` });
    try {
      const r = await build(root, c, ['--progress=quiet']);
      assert.equal(r.code, 0, r.stderr);
      assertNoInternals(r, '55,000 ENV');
      assert.equal(r.meta['kiln.steps'].length, 55_002);
    } finally {
      await cleanup(c);
    }
  });

  test('more instructions than the limit are refused with the limit named', { timeout: 120_000 }, async (t) => {
    if (!requireIntegration(t)) return;
    const c = await newContext({ Dockerfile: `FROM busybox\n${'ENV A=1\n'.repeat(100_001)}` });
    try {
      const r = await kiln(['build', '--root', root, c]);
      assert.equal(r.code, 1, r.stderr);
      assert.match(r.stderr, /Dockerfile:\d+: too many instructions: the limit is 100000 \(MAX_INSTRUCTIONS\)/);
      assert.match(r.stderr, /ERR_KILN_LIMIT_EXCEEDED/);
      assertNoInternals(r, 'instruction limit');
    } finally {
      await cleanup(c);
    }
  });

  test('an invalid image name is refused where it is given, and nothing is stored', { timeout: 60_000 }, async (t) => {
    if (!requireIntegration(t)) return;
    const c = await newContext({ Dockerfile: 'FROM busybox\n' });
    try {
      for (const bad of ['UPPER/../x:!!', 'Upper:1', 'a//b', 'x:' + 't'.repeat(129)]) {
        const r = await kiln(['build', '--root', root, '-t', bad, c]);
        assert.equal(r.code, 1, `${bad}: ${r.stderr}`);
        assert.match(r.stderr, /invalid image name .*\(-t\)/);
        assert.match(r.stderr, /ERR_KILN_IMAGE_REF/);
        assertNoInternals(r, bad);
        const tag = await kiln(['tag', '--root', root, 'busybox:latest', bad]);
        assert.equal(tag.code, 1, tag.stderr);
        assert.match(tag.stderr, /invalid image name .*\(kiln tag\)/);
      }
      const images = await kiln(['images', '--root', root]);
      assert.doesNotMatch(images.stdout, /UPPER|Upper|!!/);
    } finally {
      await cleanup(c);
    }
  });

  test('RUN [] fails at conversion with Dockerfile:LINE', { timeout: 60_000 }, async (t) => {
    if (!requireIntegration(t)) return;
    const c = await newContext({ Dockerfile: 'FROM busybox\nENV A=1\nRUN []\n' });
    try {
      const r = await kiln(['build', '--root', root, c]);
      assert.equal(r.code, 1, r.stderr);
      assert.match(r.stderr, /Dockerfile:3: RUN needs a command/);
      assertNoInternals(r, 'RUN []');
    } finally {
      await cleanup(c);
    }
  });

  test('every error path speaks a sentence: no TypeError, no stack frame, no "Cannot read properties"', { timeout: 300_000 }, async (t) => {
    if (!requireIntegration(t)) return;
    const c = await newContext({ Dockerfile: 'FROM busybox\nCOPY missing.txt /\n', 'Dockerfile.syntax': 'FROM busybox\nRUN <<EOF\n', 'Dockerfile.from': 'FROM nosuchimage:9\n', 'Dockerfile.add': 'FROM busybox\nADD many.tar /x/\n', 'Dockerfile.arg': 'FROM busybox\nARG\n', 'sub/.keep': '' });
    spawnSync('sh', ['-c', `cd ${c} && for i in $(seq 1 30); do echo $i > f$i; done && tar -cf many.tar f* && rm f*`]);
    const cases: Array<{ args: string[]; expect: RegExp; env?: NodeJS.ProcessEnv }> = [
      { args: ['build', path.join(c, 'nonexistent')], expect: /does not exist/ },
      { args: ['build', '-f', path.join(c, 'nope'), c], expect: /cannot read Dockerfile/ },
      { args: ['build', c], expect: /missing\.txt/ },
      { args: ['build', '-f', path.join(c, 'Dockerfile.syntax'), c], expect: /Dockerfile\.syntax:\d+/ },
      { args: ['build', '-f', path.join(c, 'Dockerfile.from'), c], expect: /nosuchimage/ },
      { args: ['build', '-f', path.join(c, 'Dockerfile.arg'), c], expect: /Dockerfile\.arg:2/ },
      { args: ['build', '-f', path.join(c, 'Dockerfile.add'), c], expect: /many\.tar: the archive has more than 10 entries/, env: { KILN_ADD_MAX_ENTRIES: '10' } },
      { args: ['build', '--output', 'type=zip,dest=x', c], expect: /unsupported type/ },
      { args: ['rmi', 'nosuch:1'], expect: /nosuch/ },
      { args: ['tag', 'nosuch:1', 'other:1'], expect: /nosuch/ },
      { args: ['history', 'inspect', 'zzzzzz'], expect: /zzzzzz|not found|no build/i },
      { args: ['load', path.join(c, 'nonexistent.tar')], expect: /nonexistent\.tar|not found|cannot/i },
      { args: ['import', path.join(c, 'nonexistent.tar'), 'x:1'], expect: /nonexistent\.tar|not found|cannot/i },
      { args: ['save', 'nosuch:1', '-o', path.join(c, 'out.tar')], expect: /nosuch/ },
    ];
    try {
      for (const k of cases) {
        const r = await kiln([...k.args, '--root', root], k.env ? { env: k.env } : {});
        assert.notEqual(r.code, 0, `kiln ${k.args.join(' ')} must fail:\n${r.stderr}`);
        assert.match(r.stderr, /^error: /m, `kiln ${k.args.join(' ')}: ${r.stderr}`);
        assert.match(r.stderr, k.expect, `kiln ${k.args.join(' ')}: ${r.stderr}`);
        assertNoInternals(r, `kiln ${k.args.join(' ')}`);
      }
    } finally {
      await cleanup(c);
    }
  });

  test('maxContextBytes: a context over the limit is refused during the walk, one under it builds', { timeout: 120_000 }, async (t) => {
    if (!requireIntegration(t)) return;
    const c = await newContext({ Dockerfile: 'FROM busybox\nCOPY . /x\n', '.dockerignore': 'ignored.bin\n' });
    writeFileSync(path.join(c, 'big.bin'), Buffer.alloc(300_000));
    writeFileSync(path.join(c, 'ignored.bin'), Buffer.alloc(2_000_000));
    const s = await openState({ root });
    try {
      await assert.rejects(
        runBuild({ state: s, contextDir: c, tags: [], buildArgs: {}, progress: createProgress('quiet'), maxContextBytes: 100_000 }),
        (err: Error & { code?: string }) => {
          assert.equal(err.code, 'ERR_KILN_LIMIT_EXCEEDED');
          assert.match(err.message, /build context .* is larger than the limit of 100000 bytes \(maxContextBytes/);
          return true;
        },
      );
      // the ignored file does not count
      const ok = await runBuild({ state: s, contextDir: c, tags: [], buildArgs: {}, progress: createProgress('quiet'), maxContextBytes: 1_000_000 });
      assert.match(ok.imageDigest, /^sha256:/);
    } finally {
      s.close();
      await cleanup(c);
    }
  });
});
