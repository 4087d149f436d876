import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { parseCacheFrom, parseCacheTo } from './spec.js';

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
});
