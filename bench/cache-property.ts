/**
 * The long run of the cache property (test/integration/cache-property.test.ts runs a fixed seed):
 *   node --import tsx bench/cache-property.ts [--seed N] [--scenarios N] [--rounds N]
 * A random seed unless given; prints every stale hit with the scenario's Dockerfile and mutation history, and the
 * totals. A seed that finds a bug belongs in REGRESSIONS of the test file.
 */
import { runCacheProperty } from '../test/helpers/cache-property.js';

const arg = (name: string, def: number): number => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : def;
};
const seed = arg('seed', Math.floor(Math.random() * 2 ** 31));
const started = Date.now();
const r = await runCacheProperty({ seed, scenarios: arg('scenarios', 40), rounds: arg('rounds', 20), log: (l) => process.stderr.write(`${l}\n`) });
for (const s of r.stale) console.log(`STALE seed=${s.seed} scenario=${s.scenario} round=${s.round}: ${s.step}: ${s.path}: ${s.field} (cache ${s.cached}, fresh ${s.fresh})\n${s.history.join('\n')}\n`);
console.log(`seed ${seed}: ${r.builds} builds, ${r.mutations} mutations, ${r.hitsChecked} hits checked, ${r.failedBuilds} failed builds, ${r.stale.length} stale, ${((Date.now() - started) / 1000).toFixed(0)} s`);
process.exit(r.stale.length > 0 ? 1 : 0);
