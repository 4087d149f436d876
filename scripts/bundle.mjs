// Bundles the CLI into one ESM file (dist/kiln.mjs): a Node CLI spends most of a fully cached build loading
// ~200 modules; one file halves kiln's start-up. Native and loader packages stay external.
import { build } from 'esbuild';

const cli = {
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'esm',
  external: ['better-sqlite3', 'tsx', 'esbuild', 'undici'],
  banner: { js: "import { createRequire as __kilnCreateRequire } from 'node:module'; const require = __kilnCreateRequire(import.meta.url);" },
  logLevel: 'warning',
  legalComments: 'none',
};
await build({ ...cli, entryPoints: ['dist/cli/index.js'], outfile: 'dist/kiln.mjs' });
// The entry bin/kiln runs (src/cli/lean.ts): `kiln --version` and a build handed to a local kiln serve load only
// this small file; everything else loads dist/kiln.mjs from it.
await build({ ...cli, entryPoints: ['dist/cli/lean.js'], outfile: 'dist/kiln-lean.mjs', metafile: true }).then(({ metafile }) => {
  const bytes = metafile.outputs['dist/kiln-lean.mjs'].bytes;
  if (bytes > 100_000) throw new Error(`dist/kiln-lean.mjs is ${bytes} bytes: something heavy got into the lean entry (src/cli/lean.ts)`);
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
