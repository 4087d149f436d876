import { main } from './lean.js';

/*
 * What `kiln` runs: bin/kiln starts node on this file's bundle (dist/kiln-lean.cjs), or bin/kiln.mjs imports its
 * tsc output when there is no bundle. CommonJS, and no second file to load before it: ~10 ms of a warm build's
 * start here, against the ES module bundle imported from bin/kiln.mjs.
 */
main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`error: ${(err as Error)?.message ?? String(err)}\n`);
    process.exitCode = 1;
  },
);
