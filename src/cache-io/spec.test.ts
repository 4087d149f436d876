import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { parseCacheFrom, parseCacheRegistry, parseCacheTo } from './spec.js';
import { stepTag, baseTag } from './remote.js';
import { mountTag } from './mounts.js';

describe('cache specs', () => {
  test('--cache-to', () => {
    assert.deepEqual(parseCacheTo('type=local,dest=/tmp/c,mode=max'), { type: 'local', dest: '/tmp/c', mode: 'max', tag: 'latest' });
    assert.deepEqual(parseCacheTo('type=registry,ref=localhost:5000/app:cache'), { type: 'registry', ref: 'localhost:5000/app:cache', mode: 'min' });
    assert.deepEqual(parseCacheTo('type=inline'), { type: 'inline' });
    assert.throws(() => parseCacheTo('type=local'), { code: 'ERR_KILN_CACHE_SOURCE' });
    assert.throws(() => parseCacheTo('type=gha'), { code: 'ERR_KILN_CACHE_SOURCE' });
    assert.throws(() => parseCacheTo('type=local,dest=x,mode=all'), { code: 'ERR_KILN_CACHE_SOURCE' });
  });
  test('--cache-from', () => {
    assert.deepEqual(parseCacheFrom('localhost:5000/app:cache'), { type: 'registry', ref: 'localhost:5000/app:cache' });
    assert.deepEqual(parseCacheFrom('type=local,src=/c,tag=v1'), { type: 'local', src: '/c', tag: 'v1' });
    assert.throws(() => parseCacheFrom('type=registry'), { code: 'ERR_KILN_CACHE_SOURCE' });
  });
  test('mounts=true on registry caches', () => {
    assert.deepEqual(parseCacheTo('type=registry,ref=h:5000/team/cache,mode=max,mounts=true'), { type: 'registry', ref: 'h:5000/team/cache', mode: 'max', mounts: true });
    assert.deepEqual(parseCacheFrom('type=registry,ref=h:5000/team/cache,mounts=true'), { type: 'registry', ref: 'h:5000/team/cache', mounts: true });
    assert.deepEqual(parseCacheTo('type=registry,ref=h/x,mounts=false'), { type: 'registry', ref: 'h/x', mode: 'min' });
    assert.throws(() => parseCacheTo('type=registry,ref=h/x,mounts=yes'), { code: 'ERR_KILN_CACHE_SOURCE' });
  });
  test('--cache-registry', () => {
    assert.deepEqual(parseCacheRegistry('localhost:5000/team/cache'), { ref: 'localhost:5000/team/cache', mounts: true });
    assert.deepEqual(parseCacheRegistry('ref=localhost:5000/team/cache,mounts=false'), { ref: 'localhost:5000/team/cache', mounts: false });
    assert.throws(() => parseCacheRegistry('mounts=false'), { code: 'ERR_KILN_CACHE_REGISTRY' });
    assert.throws(() => parseCacheRegistry('ref=h/x,mode=max'), { code: 'ERR_KILN_CACHE_REGISTRY' });
    assert.throws(() => parseCacheRegistry('ref=h/x,mounts=maybe'), { code: 'ERR_KILN_CACHE_REGISTRY' });
  });
  test('registry tags: valid OCI tags, one per key', () => {
    const tag = /^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$/;
    const key = `sha256:${'ab'.repeat(32)}`;
    assert.equal(stepTag(key), `step-${'ab'.repeat(32)}`);
    assert.match(stepTag('not-a-digest'), tag);
    assert.notEqual(stepTag('a'), stepTag('b'));
    for (const t of [stepTag(key), baseTag('busybox:latest'), mountTag('/root/.cache/pip'), mountTag('id:owner=1000:1000:755')]) assert.match(t, tag);
    assert.notEqual(baseTag('busybox:latest'), baseTag('busybox:1'));
  });
});
