// One layer written with one gzip stream against gzip members compressed in parallel (parallelGzip).
// Usage: node --import tsx bench/gzip-parallel.ts DIR
import fs from 'node:fs';
import { createLocalStore } from '../src/store/index.js';
import { writeLayer } from '../src/layer/index.js';
const dir = process.argv[2]!;
const root = fs.mkdtempSync('/tmp/kiln-bench-gz-');
async function main(): Promise<void> {
const store = await createLocalStore({ root });
for (let i = 0; i < 2; i++) {
  for (const parallel of [false, true]) {
    const t = Date.now();
    const info = await writeLayer({ dir, ingester: store, overlay: false, parallelGzip: parallel });
    console.log(parallel ? 'parallel' : 'single  ', Date.now() - t, 'ms', info.uncompressedSize, '->', info.size, 'load', fs.readFileSync('/proc/loadavg', 'utf8').split(' ')[0]);
  }
}
}
main().finally(() => fs.rmSync(root, { recursive: true, force: true }));
