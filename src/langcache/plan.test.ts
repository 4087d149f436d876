import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { BuildGraph, ExecOp, Vertex } from '../graph/index.js';
import { withLangCache, LANG_CACHE_LAYOUT, langCachePlan, withLangCacheEnv } from './index.js';

describe('language cache layout', () => {
  test('every directory of the seed layout is there, with its variables', () => {
    const dirs = LANG_CACHE_LAYOUT.map((e) => e.dir);
    for (const d of ['pip', 'poetry', 'pipx', 'npm', 'npm-global', 'pnpm', 'yarn', 'cargo', 'go/mod', 'go/build', 'ruby/gems', 'ruby/bundle', 'r/library', 'maven', 'gradle']) {
      assert.ok(dirs.includes(`/cache/${d}`), d);
    }
    const env = langCachePlan().env;
    assert.equal(env.PIP_CACHE_DIR, '/cache/pip');
    assert.equal(env.NPM_CONFIG_CACHE, '/cache/npm');
    assert.equal(env.NPM_CONFIG_PREFIX, '/cache/npm-global');
    assert.equal(env.CARGO_HOME, '/cache/cargo');
    assert.equal(env.GOMODCACHE, '/cache/go/mod');
    assert.equal(env.GOCACHE, '/cache/go/build');
    assert.equal(env.GRADLE_USER_HOME, '/cache/gradle');
    assert.equal(env.MAVEN_OPTS, '-Dmaven.repo.local=/cache/maven');
    assert.equal(env.R_LIBS_USER, '/cache/r/library');
  });

  test('mounts: pure caches only, owner 1000:1000 0755 by default, ids lang-<tool>', () => {
    const plan = langCachePlan();
    const pip = plan.mounts.find((m) => m.target === '/cache/pip')!;
    assert.deepEqual({ id: pip.id, uid: pip.uid, gid: pip.gid, mode: pip.mode, type: pip.type }, { id: 'lang-pip', uid: 1000, gid: 1000, mode: 0o755, type: 'cache' });
    // install locations are not mounted: what a RUN installs there stays in the image
    assert.equal(plan.mounts.some((m) => m.target === '/cache/npm-global'), false);
    assert.equal(plan.mounts.some((m) => m.target === '/cache/cargo'), false);
    assert.ok(plan.mounts.some((m) => m.target === '/cache/cargo/registry' && m.id === 'lang-cargo-registry'));
    const custom = langCachePlan({ tools: ['go'], uid: 5, gid: 6, mode: 0o700 });
    assert.deepEqual(custom.mounts.map((m) => [m.target, m.uid, m.gid, m.mode]), [
      ['/cache/go/mod', 5, 6, 0o700],
      ['/cache/go/build', 5, 6, 0o700],
    ]);
    assert.throws(() => langCachePlan({ tools: ['cobol'] }), /unknown language cache "cobol"/);
  });

  test('env: existing variables win, PATH gets the bin dirs appended', () => {
    const plan = langCachePlan({ tools: ['pip', 'npm-global'] });
    const env = withLangCacheEnv(['PIP_CACHE_DIR=/mine', 'PATH=/bin'], plan, '/usr/bin');
    assert.ok(env.includes('PIP_CACHE_DIR=/mine'));
    assert.ok(env.includes('NPM_CONFIG_PREFIX=/cache/npm-global'));
    assert.ok(env.includes('PATH=/bin:/cache/npm-global/bin'));
    assert.ok(withLangCacheEnv([], plan, '/usr/bin').includes('PATH=/usr/bin:/cache/npm-global/bin'));
  });

  test('withLangCache: every RUN gets mounts and env unless it mounts there itself; config env; warm step', () => {
    const run = (id: string, mounts: ExecOp['mounts']): Vertex => ({
      id,
      name: id,
      stage: '0',
      op: { type: 'exec', args: ['true'], env: ['PATH=/bin'], cwd: '/', user: '', network: 'default', mounts },
      deps: [],
    });
    const graph: BuildGraph = {
      vertices: new Map([
        ['a', run('a', [])],
        ['b', { ...run('b', [{ type: 'cache', target: '/cache/pip', id: 'mine' }]), parent: 'a' }],
      ]),
      target: { vertex: 'b', config: { architecture: 'amd64', os: 'linux', config: { Env: ['PATH=/bin'] }, rootfs: { type: 'layers', diff_ids: [] } } },
      order: ['a', 'b'],
      history: [],
    };
    const before = structuredClone(graph);
    const out = withLangCache(graph, { tools: ['pip', 'npm'], warm: true });
    assert.deepEqual(graph, before, 'the given graph is left as it was');
    const a = out.vertices.get('a')!.op as ExecOp;
    const b = out.vertices.get('b')!.op as ExecOp;
    assert.deepEqual(a.mounts.map((m) => m.id), ['lang-pip', 'lang-npm']);
    assert.deepEqual(b.mounts.map((m) => m.id), ['mine', 'lang-npm']);
    assert.ok(a.env.includes('PIP_CACHE_DIR=/cache/pip'));
    assert.ok(out.target.config.config.Env!.includes('NPM_CONFIG_CACHE=/cache/npm'));
    const warm = out.vertices.get(out.target.vertex)!;
    assert.equal(warm.parent, 'b');
    assert.equal(warm.noCache, true);
    assert.ok((warm.op as ExecOp).mounts.every((m) => m.readonly && m.target.startsWith('/.kiln-lang-cache/')));
  });
});
