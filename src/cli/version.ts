import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** kiln's version: the nearest package.json named kiln (from dist/cli/*.js, or the bundles dist/kiln*.mjs). */
export function version(): string {
  const here = path.dirname(fileURLToPath(import.meta.url));
  for (const p of [path.join(here, '..', 'package.json'), path.join(here, '..', '..', 'package.json')]) {
    if (!existsSync(p)) continue;
    const pkg = JSON.parse(readFileSync(p, 'utf8')) as { name?: string; version: string };
    if (pkg.name === 'kiln') return pkg.version;
  }
  return 'unknown';
}
