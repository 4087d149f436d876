import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { StatCacheRepo } from '../stat-cache.js';
import { withRepo, type RepoFactory } from './factory.js';

/** The contract of the stat-cache role. */
export function statCacheRepoSuite(impl: string, factory: RepoFactory<StatCacheRepo>): void {
  test(`${impl} stat cache: save entries, replace one, load them all`, () =>
    withRepo(factory, (stat) => {
      assert.equal(stat.statCacheLoad().size, 0);
      stat.statCacheSave([['a|1|2', 'sha256:a'], ['b|1|2', 'sha256:b']]);
      stat.statCacheSave(new Map([['a|1|2', 'sha256:a2']]));
      assert.deepEqual([...stat.statCacheLoad()].sort(), [['a|1|2', 'sha256:a2'], ['b|1|2', 'sha256:b']]);
    }));
}
