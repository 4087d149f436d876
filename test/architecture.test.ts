/**
 * The house-style lint: every part of src/ is imported only through its index.ts, and imports follow the layering
 * (leaves at the bottom, the CLI at the top). A new part must be added to LAYERS below.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { repoRoot } from './helpers/kiln.js';

const SRC = path.join(repoRoot, 'src');

/** Parts and the parts each may import. */
const LAYERS: Record<string, string[]> = {
  errors: [],
  oci: ['errors'],
  store: ['errors', 'oci'],
  metadata: ['errors', 'oci'],
  snapshot: ['errors', 'oci'],
  executor: ['errors', 'oci'],
  graph: ['errors', 'oci'],
  layer: ['errors', 'oci', 'store'],
  context: ['errors', 'oci'],
  progress: ['errors'],
  'frontend/dockerfile/parser': ['errors'],
  'frontend/dockerfile/shell': ['errors'],
  'frontend/dockerfile/instructions': ['errors', 'frontend/dockerfile/parser'],
  'frontend/dockerfile/convert': ['errors', 'oci', 'graph', 'frontend/dockerfile/parser', 'frontend/dockerfile/instructions', 'frontend/dockerfile/shell'],
  solver: ['errors', 'oci', 'graph'],
  exporter: ['errors', 'oci', 'store'],
  registry: ['errors', 'oci', 'store'],
  langcache: ['errors', 'oci', 'graph'],
  ops: ['errors', 'oci', 'graph', 'solver', 'store', 'metadata', 'snapshot', 'executor', 'layer', 'context', 'langcache'],
  'cache-io': ['errors', 'oci', 'store', 'metadata', 'registry', 'exporter', 'layer'],
  gc: ['errors', 'oci', 'store', 'metadata', 'snapshot', 'ops'],
  explain: ['errors', 'oci', 'metadata', 'solver', 'graph'],
  check: ['errors', 'oci', 'metadata', 'context', 'frontend/dockerfile/parser', 'frontend/dockerfile/instructions', 'frontend/dockerfile/shell'],
  // the planner renders its plan with the SDK's step renderer
  planner: ['errors', 'oci', 'langcache', 'context', 'sdk'],
  // registry: the host of a private base image, for the credentials its pull uses
  sdk: ['errors', 'oci', 'graph', 'langcache', 'engine', 'progress', 'planner', 'ops', 'registry'],
  // run composes a container from the engine's state, like the engine does for builds
  run: ['*'],
  engine: ['*'],
  // the oracle rebuilds through the engine in a scratch root and reads layers back
  verify: ['errors', 'oci', 'layer', 'engine', 'progress'],
  cli: ['*'],
};

function partOf(file: string): string | undefined {
  const rel = path.relative(SRC, file).split(path.sep).join('/');
  return Object.keys(LAYERS).filter((p) => rel === p || rel.startsWith(`${p}/`)).sort((a, b) => b.length - a.length)[0];
}

function* tsFiles(dir: string): Generator<string> {
  for (const name of readdirSync(dir)) {
    const p = path.join(dir, name);
    if (statSync(p).isDirectory()) yield* tsFiles(p);
    else if (name.endsWith('.ts') && !name.endsWith('.test.ts')) yield p;
  }
}

test('every src/ part is known, imported only through its index, in the allowed direction', () => {
  const problems: string[] = [];
  for (const file of tsFiles(SRC)) {
    const from = partOf(file);
    const rel = path.relative(repoRoot, file);
    if (!from) {
      problems.push(`${rel}: not in a known part (add the folder to LAYERS in test/architecture.test.ts)`);
      continue;
    }
    const text = readFileSync(file, 'utf8');
    for (const m of text.matchAll(/(?:import|export)[^'"]*?from\s+'(\.[^']+)'/g)) {
      const target = path.resolve(path.dirname(file), m[1]!);
      const to = partOf(target.replace(/\.js$/, '.ts'));
      if (!to || to === from) continue;
      const allowed = LAYERS[from]!;
      if (!allowed.includes('*') && !allowed.includes(to)) problems.push(`${rel}: ${from} may not import ${to}`);
      const entry = path.join(SRC, to, 'index.js');
      if (target !== entry) problems.push(`${rel}: imports ${m[1]} instead of ${to}/index.js`);
    }
  }
  assert.deepEqual(problems, []);
});
