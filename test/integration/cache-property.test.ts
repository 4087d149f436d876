/**
 * The cache property with a fixed seed (issue 10, item 6): random contexts, Dockerfiles and mutations; after every
 * rebuild `--verify`'s oracle must find no stale hit. The long run with a random seed is `bench/cache-property.ts`
 * (README, "How the cache works"). Seeds that found bugs are replayed here as regressions.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { runCacheProperty } from '../helpers/cache-property.js';
import { requireIntegration } from '../helpers/kiln.js';

/** Seeds that once found a stale hit or an internal error (seed, scenarios, rounds). */
const REGRESSIONS: Array<[number, number, number]> = [];

describe('cache property: no stale hit after random context mutations', () => {
  test('fixed seed', async (t) => {
    if (!requireIntegration(t)) return;
    const r = await runCacheProperty({ seed: 20261203, scenarios: 10, rounds: 12, log: (l) => t.diagnostic(l) });
    t.diagnostic(`${r.builds} builds, ${r.mutations} mutations, ${r.hitsChecked} hits checked, ${r.failedBuilds} builds failed on bad input`);
    assert.deepEqual(r.stale.map((s) => `${s.step}: ${s.path}: ${s.field} (scenario ${s.scenario} round ${s.round})\n${s.history.join('\n')}`), []);
    assert.ok(r.hitsChecked > 50, `only ${r.hitsChecked} hits were checked`);
  });
  for (const [seed, scenarios, rounds] of REGRESSIONS) {
    test(`regression seed ${seed}`, async (t) => {
      if (!requireIntegration(t)) return;
      const r = await runCacheProperty({ seed, scenarios, rounds });
      assert.deepEqual(r.stale.map((s) => `${s.step}: ${s.path}: ${s.field}`), []);
    });
  }
});
