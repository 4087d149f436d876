#!/usr/bin/env node
// The node half of bin/kiln (a shell script, which chooses the environment node starts with): runs the lean entry
// (dist/kiln-lean.mjs, made by `npm run build`; src/cli/lean.ts), which takes `--version` and builds handed to a
// local kiln serve itself and loads the full CLI (dist/kiln.mjs) for the rest; or the unbundled build output.
import { existsSync } from 'node:fs';

const bundled = new URL('../dist/kiln-lean.mjs', import.meta.url);
const { main } = await import(existsSync(bundled) ? bundled.href : '../dist/cli/lean.js');
main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err) => {
    process.stderr.write(`error: ${err?.message ?? err}\n`);
    process.exitCode = 1;
  },
);
