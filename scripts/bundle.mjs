// Bundles the CLI into one ESM file (dist/kiln.mjs): a Node CLI spends most of a fully cached build loading
// ~200 modules; one file halves kiln's start-up. Native and loader packages stay external.
import { build } from 'esbuild';

await build({
  entryPoints: ['dist/cli/index.js'],
  outfile: 'dist/kiln.mjs',
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'esm',
  external: ['better-sqlite3', 'tsx', 'esbuild'],
  banner: { js: "import { createRequire as __kilnCreateRequire } from 'node:module'; const require = __kilnCreateRequire(import.meta.url);" },
  logLevel: 'warning',
  legalComments: 'none',
});

// The web view of `kiln serve` (/ui): one browser bundle and its style sheet, served from dist/webui; nothing is
// fetched at run time.
await build({
  entryPoints: { app: 'src/webui/app.tsx' },
  outdir: 'dist/webui',
  bundle: true,
  platform: 'browser',
  target: 'es2022',
  format: 'esm',
  jsx: 'automatic',
  jsxImportSource: 'preact',
  minify: true,
  logLevel: 'warning',
  legalComments: 'none',
});
await build({ entryPoints: { app: 'src/webui/app.css' }, outdir: 'dist/webui', bundle: true, minify: true, logLevel: 'warning' });
