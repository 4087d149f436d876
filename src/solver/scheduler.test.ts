import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { BuildGraph, CopyOp, Op, Vertex } from '../graph/index.js';
import { sha256, type Digest } from '../oci/index.js';
import { solve } from './scheduler.js';
import type { CacheIndex, OpRunner, SolveEvent, VertexResult } from './types.js';

type Rec = { outputId: string; diffId: Digest | null; inputs: Record<string, unknown> };

/** An in-memory cache index and a runner that counts what it executes; every executed step makes a new layer. */
function harness(content: (v: Vertex) => Record<string, unknown> = () => ({})) {
  const records = new Map<string, Rec>();
  const executed: string[] = [];
  let layerN = 0;
  const runner: OpRunner = {
    resolveSource: async (v) => ({ manifest: v.op.type === 'source' && v.op.ref === 'scratch' ? 'scratch' : sha256(`image ${JSON.stringify(v.op)}`), layers: [] }),
    contentInputs: async (v) => content(v),
    execute: async (v) => {
      executed.push(v.id);
      await new Promise((r) => setTimeout(r, 5)); // long enough for a second identical vertex to start
      if (v.op.type === 'meta') return null;
      const diffId = sha256(`layer ${++layerN}`);
      return { diffId, contentId: `content of ${v.op.type === 'exec' ? v.op.args.join(' ') : v.id}` };
    },
    layerUsable: async () => ({ contentId: 'usable' }),
  };
  const cache: CacheIndex = {
    get: (k) => records.get(k),
    put: (r) => records.set(r.key, { outputId: r.outputId, diffId: r.diffId, inputs: r.inputs }),
    touch: () => undefined,
  };
  return { runner, cache, records, executed };
}

function graph(list: Array<Omit<Vertex, 'name' | 'stage' | 'deps'> & { deps?: string[] }>, target: string): BuildGraph {
  const vertices = new Map<string, Vertex>(list.map((v) => [v.id, { name: v.id, stage: '0', deps: [], ...v }]));
  return { vertices, order: list.map((v) => v.id), target: { vertex: target, config: { architecture: 'amd64', os: 'linux', config: {}, rootfs: { type: 'layers', diff_ids: [] } } }, history: [] };
}

const exec = (cmd: string): Op => ({ type: 'exec', args: ['/bin/sh', '-c', cmd], env: [], cwd: '/', user: '', network: 'default', mounts: [] });
const copy = (o: Partial<CopyOp>): Op => ({
  type: 'copy', from: 'context', sources: ['a'], inline: [], dest: '/a', workdir: '/', chown: '', chmod: '', excludes: [], parents: false, link: false, add: false, checksum: '', ...o,
});

describe('solve', () => {
  test('identical work reached twice in one build runs once; the second vertex shares its result', async () => {
    const h = harness();
    // two stages with the same FROM and RUN (different names and locations), and a final stage reading both
    const g = graph([
      { id: 'a0', op: { type: 'source', ref: 'busybox' }, location: { file: 'Dockerfile', line: 1 } },
      { id: 'a1', op: exec('date > /stamp'), parent: 'a0', location: { file: 'Dockerfile', line: 2 } },
      { id: 'b0', op: { type: 'source', ref: 'busybox' }, location: { file: 'Dockerfile', line: 3 } },
      { id: 'b1', op: exec('date > /stamp'), parent: 'b0', location: { file: 'Dockerfile', line: 4 } },
      { id: 'c0', op: { type: 'source', ref: 'scratch' } },
      { id: 'c1', op: copy({ from: { vertex: 'a1' }, sources: ['/stamp'], dest: '/a' }), parent: 'c0', deps: ['a1'] },
      { id: 'c2', op: copy({ from: { vertex: 'b1' }, sources: ['/stamp'], dest: '/b' }), parent: 'c1', deps: ['b1'] },
    ], 'c2');
    const events: SolveEvent[] = [];
    const results = await solve({ graph: g, runner: h.runner, cache: h.cache, onEvent: (e) => events.push(e) });
    assert.deepEqual(h.executed.filter((id) => id === 'a1' || id === 'b1').length, 1, `ran: ${h.executed.join(' ')}`);
    const [a1, b1] = [results.get('a1')!, results.get('b1')!];
    assert.equal(a1.outputId, b1.outputId);
    assert.equal(a1.key, b1.key);
    assert.deepEqual(a1.layers, b1.layers);
    assert.equal(results.size, 7, 'every vertex has a result');
    // each vertex is reported once as finished (done or cached)
    for (const id of ['a1', 'b1', 'c1', 'c2']) assert.equal(events.filter((e) => (e.type === 'done' || e.type === 'cached') && e.vertex.id === id).length, 1, `${id}: ${events.map((e) => `${e.type} ${e.vertex.id}`).join(', ')}`);
  });

  test('the same op on another parent is other work: both run', async () => {
    const h = harness();
    const g = graph([
      { id: 's', op: { type: 'source', ref: 'scratch' } },
      { id: 'p1', op: exec('echo one'), parent: 's' },
      { id: 'p2', op: exec('echo two'), parent: 's' },
      { id: 'x1', op: exec('date'), parent: 'p1' },
      { id: 'x2', op: exec('date'), parent: 'p2' },
      { id: 't', op: copy({ from: { vertex: 'x2' } }), parent: 'x1', deps: ['x2'] },
    ], 't');
    await solve({ graph: g, runner: h.runner, cache: h.cache });
    assert.deepEqual(h.executed.filter((id) => id.startsWith('x')).sort(), ['x1', 'x2']);
  });

  test('COPY --link with a numeric owner keys without its parent; a named owner keys with it', async () => {
    const keyOn = async (parentCmd: string, chown: string): Promise<string> => {
      const h = harness((v) => (v.op.type === 'copy' ? { digest: 'sources' } : {}));
      const g = graph([
        { id: 's', op: { type: 'source', ref: 'scratch' } },
        { id: 'p', op: exec(parentCmd), parent: 's' },
        { id: 'c', op: copy({ link: true, chown }), parent: 'p' },
      ], 'c');
      return (await solve({ graph: g, runner: h.runner, cache: h.cache })).get('c')!.key;
    };
    assert.equal(await keyOn('echo one', '1000:1000'), await keyOn('echo two', '1000:1000'));
    assert.equal(await keyOn('echo one', ''), await keyOn('echo two', ''));
    assert.notEqual(await keyOn('echo one', 'app'), await keyOn('echo two', 'app'));
    assert.notEqual(await keyOn('echo one', '1000:'), await keyOn('echo two', '1000:'));
  });

  test('COPY --from enters its key by the selector content, not by the stage output', async () => {
    const keyOn = async (stageCmd: string): Promise<{ copy: string; run: string }> => {
      const h = harness((v) => (v.op.type === 'copy' ? { digest: 'same copied paths' } : {}));
      const g = graph([
        { id: 's', op: { type: 'source', ref: 'scratch' } },
        { id: 'stage', op: exec(stageCmd), parent: 's' },
        { id: 'c', op: copy({ from: { vertex: 'stage' } }), parent: 's', deps: ['stage'] },
        // a bind mount from the stage reads all of it: its key follows the stage output
        { id: 'r', op: { ...exec('ls /mnt'), mounts: [{ type: 'bind', target: '/mnt', fromVertex: 'stage' }] } as Op, parent: 'c', deps: ['stage'] },
      ], 'r');
      const res = await solve({ graph: g, runner: h.runner, cache: h.cache });
      return { copy: res.get('c')!.key, run: res.get('r')!.key };
    };
    const [one, two] = [await keyOn('echo one'), await keyOn('echo two')];
    assert.equal(one.copy, two.copy);
    assert.notEqual(one.run, two.run);
  });

  test('SOURCE_DATE_EPOCH enters the keys of layer-writing steps only', async () => {
    const keys = async (epoch?: number): Promise<Map<string, VertexResult>> => {
      const h = harness();
      const g = graph([
        { id: 's', op: { type: 'source', ref: 'scratch' } },
        { id: 'm', op: { type: 'meta', change: { env: { A: '1' } } }, parent: 's' },
        { id: 'r', op: exec('echo'), parent: 'm' },
        { id: 'd', op: { type: 'mkdir', path: '/app', user: '' }, parent: 'r' },
      ], 'd');
      return solve({ graph: g, runner: h.runner, cache: h.cache, ...(epoch !== undefined ? { sourceDateEpoch: epoch } : {}) });
    };
    const [none, zero, one] = [await keys(), await keys(0), await keys(1)];
    assert.equal(none.get('m')!.key, zero.get('m')!.key);
    for (const id of ['r', 'd']) {
      assert.notEqual(none.get(id)!.key, zero.get(id)!.key, id);
      assert.notEqual(zero.get(id)!.key, one.get(id)!.key, id);
    }
  });

  test('a second solve over the same records hits everything and runs nothing', async () => {
    const h = harness();
    const g = graph([
      { id: 's', op: { type: 'source', ref: 'scratch' } },
      { id: 'r', op: exec('echo hi'), parent: 's' },
    ], 'r');
    const first = await solve({ graph: g, runner: h.runner, cache: h.cache });
    const second = await solve({ graph: g, runner: h.runner, cache: h.cache });
    assert.deepEqual(h.executed, ['r']);
    assert.equal(second.get('r')!.cached, true);
    assert.equal(second.get('r')!.key, first.get('r')!.key);
  });
});
