import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { CacheRecordRepo } from '../cache-records.js';
import { withRepo, type RepoFactory } from './factory.js';

const rec = (key: string, outputId: string, diffId: `sha256:${string}` | null, created?: number) => ({
  key, outputId, diffId, name: `RUN ${key}`, inputs: { cmd: key, nested: { n: 1 } }, ...(created === undefined ? {} : { created }),
});

/** The contract of the cache-records role. */
export function cacheRecordRepoSuite(impl: string, factory: RepoFactory<CacheRecordRepo>): void {
  test(`${impl} cache records: put, get with inputs, touch counts uses, delete`, () =>
    withRepo(factory, (cache) => {
      assert.equal(cache.getCache('k1'), undefined);
      assert.equal(cache.getCacheCreated('k1'), undefined);
      cache.putCache(rec('k1', 'o1', 'sha256:d1', 1000));
      const r = cache.getCache('k1');
      assert.ok(r);
      assert.equal(r.outputId, 'o1');
      assert.equal(r.diffId, 'sha256:d1');
      assert.equal(r.name, 'RUN k1');
      assert.deepEqual(r.inputs, { cmd: 'k1', nested: { n: 1 } });
      assert.equal(r.created, 1000);
      assert.equal(r.useCount, 1);
      assert.equal(cache.getCacheCreated('k1'), 1000);
      cache.touchCache('k1');
      assert.equal(cache.getCache('k1')?.useCount, 2);
      cache.deleteCache('k1');
      assert.equal(cache.getCache('k1'), undefined);
    }));

  test(`${impl} cache records: created is kept while the output stays the same and reset when it changes`, () =>
    withRepo(factory, (cache) => {
      cache.putCache(rec('k', 'o1', null, 1000));
      cache.putCache(rec('k', 'o1', null, 2000));
      assert.equal(cache.getCache('k')?.created, 1000, 'same output and layer: first production time kept');
      assert.equal(cache.getCache('k')?.useCount, 2);
      cache.putCache(rec('k', 'o1', 'sha256:d', 3000));
      assert.equal(cache.getCache('k')?.created, 3000, 'another layer: reset');
      cache.putCache(rec('k', 'o2', 'sha256:d', 4000));
      assert.equal(cache.getCache('k')?.created, 4000, 'another output: reset');
      const before = Date.now();
      cache.putCache(rec('fresh', 'o', null));
      assert.ok((cache.getCache('fresh')?.created ?? 0) >= before, 'default created is now');
    }));

  test(`${impl} cache records: list by last use reads inputs when asked; count by layer`, () =>
    withRepo(factory, async (cache) => {
      cache.putCache(rec('a', 'oa', 'sha256:d1'));
      await new Promise((r) => setTimeout(r, 5));
      cache.putCache(rec('b', 'ob', 'sha256:d1'));
      await new Promise((r) => setTimeout(r, 5));
      cache.putCache(rec('c', 'oc', null));
      await new Promise((r) => setTimeout(r, 5));
      cache.touchCache('a');
      const all = cache.listCache();
      assert.deepEqual(all.map((r) => r.key), ['b', 'c', 'a'], 'oldest use first');
      assert.deepEqual(all[2].inputs, { cmd: 'a', nested: { n: 1 } });
      assert.equal(cache.countCacheByDiffId('sha256:d1'), 2);
      assert.equal(cache.countCacheByDiffId('sha256:none'), 0);
    }));
}
