#!/usr/bin/env node
// The node half of bin/kiln when there is no bundle (bin/kiln runs dist/kiln-lean.cjs itself when `npm run build`
// made it): the tsc output of the lean entry (src/cli/lean-entry.ts), which takes `--version` and builds handed to a
// local kiln serve itself and loads the full CLI for the rest.
import { existsSync } from 'node:fs';

const bundled = new URL('../dist/kiln-lean.cjs', import.meta.url);
await import(existsSync(bundled) ? bundled.href : '../dist/cli/lean-entry.js');
