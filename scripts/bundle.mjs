// Bundles the CLI into one ESM file (dist/kiln.mjs): a Node CLI spends most of a fully cached build loading
// ~200 modules; one file halves kiln's start-up. Native and loader packages stay external.
import { build } from 'esbuild';

const cli = {
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'esm',
  external: ['better-sqlite3', 'tsx', 'esbuild', 'undici', 'koffi'],
  banner: { js: "import { createRequire as __kilnCreateRequire } from 'node:module'; const require = __kilnCreateRequire(import.meta.url);" },
  logLevel: 'warning',
  legalComments: 'none',
};
await build({ ...cli, entryPoints: ['dist/cli/index.js'], outfile: 'dist/kiln.mjs' });
// The entry bin/kiln runs (src/cli/lean-entry.ts → lean.ts): `kiln --version` and a build handed to a local kiln
// serve load only this small file; everything else loads dist/kiln.mjs from it. CommonJS, run by node directly:
// it starts ~10 ms sooner than an ES module imported from bin/kiln.mjs (measured); import.meta.url is this file's.
await build({
  ...cli,
  format: 'cjs',
  banner: { js: "const __kilnSelfUrl = require('node:url').pathToFileURL(__filename).href;" },
  define: { 'import.meta.url': '__kilnSelfUrl' },
  entryPoints: ['dist/cli/lean-entry.js'],
  outfile: 'dist/kiln-lean.cjs',
  metafile: true,
}).then(({ metafile }) => {
  const bytes = metafile.outputs['dist/kiln-lean.cjs'].bytes;
  if (bytes > 100_000) throw new Error(`dist/kiln-lean.cjs is ${bytes} bytes: something heavy got into the lean entry (src/cli/lean.ts)`);
  const builtins = Object.values(metafile.outputs['dist/kiln-lean.cjs'].imports).map((i) => i.path);
  if (builtins.includes('node:http')) throw new Error('dist/kiln-lean.cjs loads node:http: the local hand-off speaks over node:net (src/client/unix-http.ts)');
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
