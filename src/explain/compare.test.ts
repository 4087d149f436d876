import { test } from 'node:test';
import assert from 'node:assert/strict';
import { compareInputs } from './compare.js';
import { explainMiss, diffBuilds, findPreviousBuild } from './explain.js';
import type { BuildRecord } from '../metadata/index.js';

const ctx = { argsBefore: {}, argsAfter: {}, parentIsSource: false, parentName: '[2/3] COPY a /a' };
const base = {
  version: 'kiln-key-v1',
  parent: 'sha256:p1',
  op: { type: 'exec', args: ['sh', '-c', 'make'], env: ['PATH=/bin', 'V=1'], cwd: '/', user: '' },
  deps: [],
  content: {},
  parentKey: 'k0',
  parentCached: true,
};

test('parent rebuilt, base image changed, stage dependency', () => {
  assert.equal(compareInputs(base, { ...base, parent: 'sha256:p2', parentCached: false }, ctx), 'parent step was rebuilt: [2/3] COPY a /a');
  assert.equal(compareInputs(base, { ...base, parent: 'sha256:p2' }, ctx), 'parent step changed: [2/3] COPY a /a');
  assert.equal(compareInputs({ ...base, parent: `sha256:${'a'.repeat(64)}` }, { ...base, parent: `sha256:${'b'.repeat(64)}` }, { ...ctx, parentIsSource: true }), 'base image digest changed: sha256:aaaaaaaaaaaa → sha256:bbbbbbbbbbbb');
  assert.match(compareInputs(base, { ...base, deps: ['x'] }, ctx)!, /stage or image it reads from/);
});

test('build arg vs env, secrets hidden, command and other fields', () => {
  const v2 = { ...base, op: { ...base.op, env: ['PATH=/bin', 'V=2'] } };
  assert.equal(compareInputs(base, v2, ctx), 'env V changed: "1" → "2"');
  assert.equal(compareInputs(base, v2, { ...ctx, argsAfter: { V: '2' } }), 'build arg V changed: "1" → "2"');
  const tok = (v: string): typeof base => ({ ...base, op: { ...base.op, env: ['PATH=/bin', 'V=1', `NPM_TOKEN=${v}`] } });
  assert.equal(compareInputs(tok('a'), tok('b'), { ...ctx, argsBefore: { NPM_TOKEN: '***' }, argsAfter: { NPM_TOKEN: '***' } }), 'build arg NPM_TOKEN changed: (value hidden) → (value hidden)');
  assert.equal(compareInputs(base, { ...base, op: { ...base.op, args: ['sh', '-c', 'make all'] } }, ctx), 'the command changed');
  assert.equal(compareInputs(base, { ...base, op: { ...base.op, cwd: '/src' } }, ctx), 'WORKDIR changed');
  const meta = (v: string): typeof base => ({ ...base, op: { type: 'meta', change: { env: { E: v } } } as never });
  assert.equal(compareInputs(meta('1'), meta('2'), ctx), 'ENV E changed: "1" → "2"');
});

test('files: content, mode, added, removed, too many to list', () => {
  const c = (files: Array<[string, string, number]>, digest = 'd'): typeof base => ({ ...base, content: { digest, files } as never });
  const a = c([['a.txt', 'sha256:111111111111aaaa', 0o100644], ['b.txt', 'sha256:22', 0o100644]], 'd1');
  assert.equal(compareInputs(a, c([['a.txt', 'sha256:333333333333bbbb', 0o100644], ['b.txt', 'sha256:22', 0o100644]], 'd2'), ctx), 'file content changed: a.txt (sha256:111111111111 → sha256:333333333333)');
  assert.equal(compareInputs(a, c([['a.txt', 'sha256:111111111111aaaa', 0o100755], ['b.txt', 'sha256:22', 0o100644]], 'd2'), ctx), 'file mode changed: a.txt (0644 → 0755)');
  assert.equal(compareInputs(a, c([['a.txt', 'sha256:111111111111aaaa', 0o100644], ['b.txt', 'sha256:22', 0o100644], ['c.txt', 'x', 0o100644]], 'd2'), ctx), 'file added: c.txt');
  assert.equal(compareInputs(a, c([['a.txt', 'sha256:111111111111aaaa', 0o100644]], 'd2'), ctx), 'file removed: b.txt');
  assert.match(compareInputs(a, { ...base, content: { digest: 'd3', fileCount: 5000 } }, ctx)!, /5000 files; too many to list/);
  assert.equal(compareInputs(a, a, ctx), undefined);
});

function rec(id: string, started: number, steps: Array<{ name: string; key: string; cached?: boolean }>, over: Partial<BuildRecord> = {}): BuildRecord {
  return { id, started, finished: started + 1, status: 'success', target: '', context: '/c', dockerfile: '/c/Dockerfile', args: {}, tags: [], imageDigest: null, steps, error: null, ...over };
}

test('explainMiss: skipped, first build, pruned record; previous build is the last of the same target', () => {
  const step = { name: 's', cached: false, key: 'k2', inputs: base, parentIsSource: false };
  const source = { listBuilds: () => [], inputsOf: () => undefined };
  assert.equal(explainMiss({ step: { ...step, skipped: '--no-cache' }, index: 0, previous: undefined, argsNow: {}, source }), 'cache skipped (--no-cache)');
  assert.equal(explainMiss({ step, index: 0, previous: undefined, argsNow: {}, source }), 'never cached: first build of this target');
  const prev = rec('b1', 1, [{ name: 's', key: 'k2' }]);
  assert.match(explainMiss({ step, index: 0, previous: prev, argsNow: {}, source })!, /record was removed/);
  assert.equal(explainMiss({ step: { ...step, cached: true }, index: 0, previous: prev, argsNow: {}, source }), undefined);
  const builds = [rec('b1', 1, []), rec('b2', 5, []), rec('b3', 9, [], { target: 'other' }), rec('b4', 7, [], { status: 'failed' })];
  assert.equal(findPreviousBuild(builds, { context: '/c', dockerfile: '/c/Dockerfile', target: '' })?.id, 'b2');
});

test('diffBuilds compares step by step through recorded inputs', () => {
  const a = rec('a', 1, [{ name: '[1/2] FROM busybox', key: 'src' }, { name: '[2/2] RUN make', key: 'k1' }]);
  const b = rec('b', 2, [{ name: '[1/2] FROM busybox', key: 'src' }, { name: '[2/2] RUN make', key: 'k2' }]);
  const inputs: Record<string, unknown> = { k1: base, k2: { ...base, op: { ...base.op, env: ['PATH=/bin', 'V=9'] } } };
  const rows = diffBuilds(a, b, { listBuilds: () => [], inputsOf: (k) => inputs[k] as Record<string, unknown> | undefined });
  assert.deepEqual(rows.map((r) => [r.same, r.reason]), [[true, undefined], [false, 'env V changed: "1" → "9"']]);
});
