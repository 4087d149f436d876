/**
 * The house-style lint, stated as the intended layering rather than as a list of what the code happens to do.
 *
 * Every src/ folder is one part in one tier. A part imports another part only through its index.ts, only if the
 * part lists it in `uses`, and only if the importer's tier may reach the other part's tier (TIER_REACH). Imports that
 * break the intended layering today are listed in DEBTS with the issue item that removes them; a debt that is no
 * longer needed fails the test, so the list can only shrink. Every form of import counts: `import … from`,
 * `export … from`, `import '…'` (side effect) and `import('…')`. `export *` and default exports are refused, and
 * npm packages are allowed only in the parts listed in PACKAGES.
 *
 * A new part: add it to PARTS in its tier (the server/service/client/fsroot entries below show the shape).
 *
 * Functions stay short where the build's work is done (FUNCTION_LENGTH_PARTS): a function (declaration, method,
 * arrow or function expression, nested ones counted inside their parent too) may not span more than
 * MAX_FUNCTION_LINES lines, read with the TypeScript compiler's parser. LONG_FUNCTIONS lists the ones allowed to be
 * longer until they are split; like DEBTS it can only shrink (a listed function that got short fails the test).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const SRC = path.join(repoRoot, 'src');

/** The tiers, bottom to top. */
type Tier = 'leaf' | 'storage' | 'cache' | 'solver' | 'ops' | 'frontend' | 'composition';

/**
 * Which tiers a part of each tier may import (its own tier included where listed; the graph is checked for cycles).
 * - leaf: plain data and the error table; import nothing of ours.
 * - storage: one storage or transport mechanism each (blobs, records, snapshots, containers, the graph IR, the
 *   build context, layer tars, registries, archives); leaves and each other, acyclically.
 * - cache: what relates keys, layers, blobs and cache mounts, and moves them between machines.
 * - solver: walks the graph and computes keys; knows the graph and its own interfaces, never ops or front ends.
 * - ops: links the solver to storage and executors (the op implementations) and collects what they leave behind.
 * - frontend: turns text or a template into a graph; nothing below the graph that runs or stores.
 * - composition: wires parts together for one use (a build, a run, a service); only cli may import anything.
 */
const TIER_REACH: Record<Tier, Tier[]> = {
  leaf: ['leaf'],
  storage: ['leaf', 'storage'],
  cache: ['leaf', 'storage', 'cache'],
  solver: ['leaf', 'storage', 'solver'],
  ops: ['leaf', 'storage', 'cache', 'solver', 'ops'],
  frontend: ['leaf', 'storage', 'frontend'],
  composition: ['leaf', 'storage', 'cache', 'solver', 'ops', 'frontend', 'composition'],
};

interface Part {
  tier: Tier;
  /** The parts this part may import; '*' only for the composition root. */
  uses: string[];
}

const PARTS: Record<string, Part> = {
  // leaves
  errors: { tier: 'leaf', uses: [] },
  oci: { tier: 'leaf', uses: ['errors'] },
  progress: { tier: 'leaf', uses: ['errors'] },
  proc: { tier: 'leaf', uses: ['errors'] },
  flags: { tier: 'leaf', uses: ['errors'] },
  // paths inside a container's root, resolved component by component without following links out of it
  fsroot: { tier: 'leaf', uses: ['errors'] },
  // files with holes: their data extents and sparse copies (below layer, context and ops)
  sparse: { tier: 'leaf', uses: ['errors'] },
  // the system calls Node has no API for (mount, umount, extended attributes), through koffi
  sys: { tier: 'leaf', uses: [] },
  // the default state root (KILN_ROOT, /var/lib/kiln, XDG): found by the lean CLI entry without the engine
  stateroot: { tier: 'leaf', uses: [] },
  // PostgreSQL: connections, migrations and the service schema
  pg: { tier: 'storage', uses: ['errors'] },
  // the build queue on PostgreSQL (pg-boss)
  queue: { tier: 'storage', uses: ['errors', 'pg'] },
  // storage parts
  store: { tier: 'storage', uses: ['errors', 'oci', 'proc'] },
  metadata: { tier: 'storage', uses: ['errors', 'oci'] },
  snapshot: { tier: 'storage', uses: ['errors', 'oci', 'sys'] },
  executor: { tier: 'storage', uses: ['errors', 'oci', 'proc', 'fsroot', 'sys'] },
  graph: { tier: 'storage', uses: ['errors', 'oci'] },
  context: { tier: 'storage', uses: ['errors', 'oci', 'sparse', 'sys'] },
  layer: { tier: 'storage', uses: ['errors', 'oci', 'store', 'sparse', 'sys'] },
  registry: { tier: 'storage', uses: ['errors', 'oci', 'store'] },
  exporter: { tier: 'storage', uses: ['errors', 'oci', 'store'] },
  // cache
  // refs over layers, blobs and snapshots (acquire, mount, commit, usable) and the leases GC honours
  cache: { tier: 'cache', uses: ['errors', 'oci', 'progress', 'proc', 'store', 'metadata', 'snapshot', 'layer', 'graph'] },
  'cache-io': { tier: 'cache', uses: ['errors', 'oci', 'flags', 'store', 'metadata', 'registry', 'exporter', 'layer'] },
  gc: { tier: 'cache', uses: ['errors', 'oci', 'store', 'metadata', 'snapshot', 'proc', 'cache'] },
  // solver
  solver: { tier: 'solver', uses: ['errors', 'oci', 'graph'] },
  explain: { tier: 'solver', uses: ['errors', 'oci', 'metadata', 'graph', 'solver'] },
  // ops
  ops: { tier: 'ops', uses: ['errors', 'oci', 'progress', 'graph', 'solver', 'cache', 'executor', 'context', 'proc', 'sparse', 'fsroot', 'sys'] },
  // front ends
  'frontend/dockerfile/parser': { tier: 'frontend', uses: ['errors'] },
  'frontend/dockerfile/shell': { tier: 'frontend', uses: ['errors'] },
  'frontend/dockerfile/instructions': { tier: 'frontend', uses: ['errors', 'frontend/dockerfile/parser'] },
  'frontend/dockerfile/convert': {
    tier: 'frontend',
    uses: ['errors', 'oci', 'graph', 'langcache', 'frontend/dockerfile/parser', 'frontend/dockerfile/instructions', 'frontend/dockerfile/shell'],
  },
  langcache: { tier: 'frontend', uses: ['errors', 'oci', 'graph'] },
  check: { tier: 'frontend', uses: ['errors', 'oci', 'metadata', 'context', 'frontend/dockerfile/parser', 'frontend/dockerfile/instructions', 'frontend/dockerfile/shell'] },
  // the template SDK: describes templates and emits their steps as typed instructions; what builds them is a Builder
  // it is given (src/api)
  sdk: { tier: 'frontend', uses: ['errors', 'oci', 'graph', 'langcache', 'frontend/dockerfile/convert', 'frontend/dockerfile/instructions'] },
  // the planner renders its plan with the SDK's step renderer
  planner: { tier: 'frontend', uses: ['errors', 'oci', 'langcache', 'context', 'sdk'] },
  // composition
  engine: {
    tier: 'composition',
    uses: ['errors', 'oci', 'progress', 'proc', 'stateroot', 'store', 'metadata', 'snapshot', 'executor', 'graph', 'context', 'layer', 'registry', 'exporter',
      'cache', 'cache-io', 'gc', 'solver', 'explain', 'ops', 'frontend/dockerfile/convert', 'langcache', 'check'],
  },
  run: { tier: 'composition', uses: ['errors', 'oci', 'proc', 'context', 'executor', 'cache', 'ops', 'engine'] },
  // the oracle rebuilds through the engine in a scratch root and reads layers back
  verify: { tier: 'composition', uses: ['errors', 'oci', 'layer', 'progress', 'engine'] },
  // room for the service parts: each names what it wires; none may be imported by a lower tier
  // the build service's records (one store interface: SQLite, or PostgreSQL through pg), the queue, the upload store
  service: { tier: 'composition', uses: ['errors', 'oci', 'registry', 'pg'] },
  // kiln serve: runs builds with the engine in per-team state roots (or hands them to workers through the shared
  // queue); renders SDK templates sent as JSON
  server: { tier: 'composition', uses: ['errors', 'oci', 'graph', 'engine', 'service', 'sdk', 'frontend/dockerfile/convert', 'progress', 'ops', 'gc', 'pg', 'queue', 'registry', 'context'] },
  // the HTTP client of kiln serve: manifests of a context (walked like the engine walks it) and uploads
  client: { tier: 'composition', uses: ['errors', 'context', 'service'] },
  // the web view of kiln serve (a browser bundle, src/webui/tsconfig.json): talks to the server over HTTP only
  webui: { tier: 'composition', uses: [] },
  // the package entry (`import { Template } from 'kiln'`): the SDK with its Builder, the engine on this machine or
  // a build service through the client; registry: the host of a private base image, for the credentials its pull uses
  api: { tier: 'composition', uses: ['errors', 'progress', 'registry', 'engine', 'client', 'sdk'] },
  // the composition root
  cli: { tier: 'composition', uses: ['*'] },
};

/** Imports that break the intended layering today, each with what removes it. */
const DEBTS: Record<string, string> = {};

/** npm packages, and the parts that may use them (node: builtins are free). */
const PACKAGES: Record<string, string[]> = {
  'better-sqlite3': ['metadata', 'service'],
  hono: ['server'],
  preact: ['webui'],
  '@hono/zod-openapi': ['server'],
  '@hono/node-server': ['server'],
  zod: ['server'],
  'prom-client': ['server'],
  pg: ['pg', 'queue'],
  'pg-boss': ['queue'],
  'pg-connection-string': ['pg'],
  'node-pg-migrate': ['pg'],
  commander: ['cli'],
  picocolors: ['progress'],
  'tar-stream': ['layer', 'exporter', 'ops', 'cache-io'],
  tsx: ['cli'],
  undici: ['proc'],
  koffi: ['sys'],
};

/** The folders (under src/) whose functions are held to MAX_FUNCTION_LINES. */
const FUNCTION_LENGTH_PARTS = ['solver', 'engine', 'ops', 'cache', 'frontend/dockerfile/convert'];
const MAX_FUNCTION_LINES = 120;
/**
 * Functions allowed to be longer than MAX_FUNCTION_LINES until they are split, keyed `src/<file>:<name>` with why.
 * Empty: nothing in FUNCTION_LENGTH_PARTS is longer (the longest is createLayerCache, 105 lines). Do not add to it.
 */
const LONG_FUNCTIONS: Record<string, string> = {};

interface LongFunction {
  /** `src/<file>:<name>`, the key LONG_FUNCTIONS uses */
  key: string;
  line: number;
  lines: number;
}

/** The functions of one file longer than `max` lines, outermost first; `rel` is the path shown (src/…). */
function longFunctions(rel: string, text: string, max = MAX_FUNCTION_LINES): LongFunction[] {
  const sf = ts.createSourceFile(rel, text, ts.ScriptTarget.Latest, true);
  const lineOf = (pos: number): number => sf.getLineAndCharacterOfPosition(pos).line + 1;
  const found: LongFunction[] = [];
  const visit = (node: ts.Node): void => {
    if (ts.isFunctionLike(node) && 'body' in node && node.body) {
      const line = lineOf(node.getStart(sf));
      const lines = lineOf(node.end) - line + 1;
      if (lines > max) found.push({ key: `${rel}:${functionName(node, sf)}`, line, lines });
    }
    ts.forEachChild(node, visit);
  };
  visit(sf);
  return found;
}

/** A function's name: its own, or the variable, property or class member it is assigned to. */
function functionName(node: ts.SignatureDeclaration, sf: ts.SourceFile): string {
  if (ts.isConstructorDeclaration(node)) return 'constructor';
  if (node.name) return node.name.getText(sf);
  const p = node.parent;
  if ((ts.isVariableDeclaration(p) || ts.isPropertyAssignment(p) || ts.isPropertyDeclaration(p)) && p.name) return p.name.getText(sf);
  return `<anonymous@${sf.getLineAndCharacterOfPosition(node.getStart(sf)).line + 1}>`;
}

interface ImportSite {
  specifier: string;
  line: number;
  form: 'from' | 'side-effect' | 'dynamic';
}

/** Every module specifier a TypeScript file names, with its line; comments are ignored. */
function importsOf(text: string): ImportSite[] {
  const code = stripComments(text);
  const sites: ImportSite[] = [];
  const lineAt = (i: number): number => code.slice(0, i).split('\n').length;
  for (const m of code.matchAll(/\b(?:import|export)\b[^'"`;]*?\bfrom\s*(['"])([^'"]+)\1/g)) sites.push({ specifier: m[2]!, line: lineAt(m.index), form: 'from' });
  for (const m of code.matchAll(/(?:^|[;\n])\s*import\s*(['"])([^'"]+)\1/g)) sites.push({ specifier: m[2]!, line: lineAt(m.index + m[0].indexOf('import')), form: 'side-effect' });
  for (const m of code.matchAll(/\bimport\s*\(\s*(['"`])([^'"`]+)\1/g)) sites.push({ specifier: m[2]!, line: lineAt(m.index), form: 'dynamic' });
  return sites;
}

/**
 * Blank out comments (keeping line breaks) so a commented-out import is not read; with `blankStrings` the insides of
 * string literals go too, so prose such as 'export default …' in a message is not read as code.
 */
function stripComments(text: string, blankStrings = false): string {
  let out = '';
  let i = 0;
  while (i < text.length) {
    const c = text[i]!;
    const next = text[i + 1];
    if (c === '/' && next === '/') {
      while (i < text.length && text[i] !== '\n') i++;
    } else if (c === '/' && next === '*') {
      const end = text.indexOf('*/', i + 2);
      const stop = end < 0 ? text.length : end + 2;
      out += text.slice(i, stop).replace(/[^\n]/g, ' ');
      i = stop;
    } else if (c === "'" || c === '"' || c === '`') {
      let j = i + 1;
      while (j < text.length && text[j] !== c) j += text[j] === '\\' ? 2 : 1;
      out += blankStrings ? c + text.slice(i + 1, j).replace(/[^\n]/g, ' ') + c : text.slice(i, j + 1);
      i = j + 1;
    } else {
      out += c;
      i++;
    }
  }
  return out;
}

function partOf(rel: string): string | undefined {
  return Object.keys(PARTS).filter((p) => rel === p || rel.startsWith(`${p}/`)).sort((a, b) => b.length - a.length)[0];
}

function* tsFiles(dir: string): Generator<string> {
  for (const name of readdirSync(dir)) {
    const p = path.join(dir, name);
    if (statSync(p).isDirectory()) yield* tsFiles(p);
    else if ((name.endsWith('.ts') || name.endsWith('.tsx')) && !name.endsWith('.test.ts')) yield p;
  }
}

/** What one file breaks; `usedDebts` collects the debts it relies on. */
function checkFile(relFromSrc: string, text: string, usedDebts: Set<string>): string[] {
  const problems: string[] = [];
  const where = (line: number): string => `src/${relFromSrc}:${line}`;
  const from = partOf(relFromSrc);
  if (!from) return [`src/${relFromSrc}: not in a known part (add the folder to PARTS in test/architecture.test.ts)`];
  const code = stripComments(text, true);
  for (const m of code.matchAll(/\bexport\s*\*/g)) problems.push(`${where(code.slice(0, m.index).split('\n').length)}: \`export *\` (name each export)`);
  for (const m of code.matchAll(/\bexport\s+default\b/g)) problems.push(`${where(code.slice(0, m.index).split('\n').length)}: default export (use a named export)`);
  for (const site of importsOf(text)) {
    const spec = site.specifier;
    if (spec.startsWith('node:')) continue;
    if (!spec.startsWith('.')) {
      const pkg = spec.startsWith('@') ? spec.split('/').slice(0, 2).join('/') : spec.split('/')[0]!;
      const allowed = PACKAGES[pkg];
      if (!allowed) problems.push(`${where(site.line)}: imports package ${spec}, which is not in PACKAGES (a builtin must be written node:${spec})`);
      else if (!allowed.includes(from)) problems.push(`${where(site.line)}: ${from} may not use the package ${pkg}`);
      continue;
    }
    const targetRel = path.posix.normalize(path.posix.join(path.posix.dirname(relFromSrc), spec));
    if (targetRel.startsWith('..')) {
      problems.push(`${where(site.line)}: imports ${spec}, outside src/`);
      continue;
    }
    const to = partOf(targetRel.replace(/\.js$/, '.ts'));
    if (!to) {
      problems.push(`${where(site.line)}: imports ${spec}, which is in no known part`);
      continue;
    }
    if (to === from) continue;
    if (targetRel !== `${to}/index.js`) problems.push(`${where(site.line)}: imports ${spec} instead of ${to}/index.js`);
    const uses = PARTS[from]!.uses;
    if (uses.includes('*')) continue;
    const edge = `${from} -> ${to}`;
    if (!uses.includes(to)) problems.push(`${where(site.line)}: ${from} may not import ${to} (not in its uses)`);
    else if (!TIER_REACH[PARTS[from]!.tier].includes(PARTS[to]!.tier)) {
      if (DEBTS[edge]) usedDebts.add(edge);
      else problems.push(`${where(site.line)}: ${from} (${PARTS[from]!.tier}) may not import ${to} (${PARTS[to]!.tier})`);
    }
  }
  return problems;
}

/** Cycles among the parts' uses (cli's '*' left out: nothing may import cli). */
function cycles(): string[] {
  const found: string[] = [];
  const state = new Map<string, 'open' | 'done'>();
  const visit = (p: string, trail: string[]): void => {
    if (state.get(p) === 'done') return;
    if (state.get(p) === 'open') {
      found.push([...trail.slice(trail.indexOf(p)), p].join(' -> '));
      return;
    }
    state.set(p, 'open');
    for (const q of PARTS[p]!.uses) if (q !== '*') visit(q, [...trail, p]);
    state.set(p, 'done');
  };
  for (const p of Object.keys(PARTS)) visit(p, []);
  return found;
}

test('the layering table is well formed: known parts, no wildcard but cli, reachable tiers, no cycles', () => {
  const problems: string[] = [];
  for (const [name, part] of Object.entries(PARTS)) {
    if (part.uses.includes('*') && name !== 'cli') problems.push(`${name}: only the composition root (cli) may use '*'`);
    for (const u of part.uses) {
      if (u === '*') continue;
      if (!PARTS[u]) problems.push(`${name}: uses unknown part ${u}`);
      else if (u === 'cli') problems.push(`${name}: nothing may import cli`);
      else if (!TIER_REACH[part.tier].includes(PARTS[u]!.tier) && !DEBTS[`${name} -> ${u}`]) problems.push(`${name} (${part.tier}) lists ${u} (${PARTS[u]!.tier}), which its tier may not reach`);
    }
  }
  for (const edge of Object.keys(DEBTS)) {
    const [a, b] = edge.split(' -> ');
    if (!PARTS[a!]?.uses.includes(b!)) problems.push(`debt ${edge}: not in ${a}'s uses`);
  }
  problems.push(...cycles().map((c) => `cycle: ${c}`));
  assert.deepEqual(problems, []);
});

test('every src/ file is in a part, imports only through index.ts, in the allowed direction, with no export * or default export', () => {
  const problems: string[] = [];
  const usedDebts = new Set<string>();
  for (const file of tsFiles(SRC)) {
    const rel = path.relative(SRC, file).split(path.sep).join('/');
    problems.push(...checkFile(rel, readFileSync(file, 'utf8'), usedDebts));
  }
  for (const edge of Object.keys(DEBTS)) if (!usedDebts.has(edge)) problems.push(`debt ${edge} is paid: remove it from DEBTS (and the edge from uses if it is gone)`);
  assert.deepEqual(problems, []);
});

test(`no function in ${FUNCTION_LENGTH_PARTS.join(', ')} is longer than ${MAX_FUNCTION_LINES} lines (but those in LONG_FUNCTIONS)`, () => {
  const problems: string[] = [];
  const seen = new Set<string>();
  for (const part of FUNCTION_LENGTH_PARTS) {
    for (const file of tsFiles(path.join(SRC, part))) {
      const rel = path.relative(repoRoot, file).split(path.sep).join('/');
      for (const f of longFunctions(rel, readFileSync(file, 'utf8'))) {
        seen.add(f.key);
        if (!LONG_FUNCTIONS[f.key]) problems.push(`${rel}:${f.line}: ${f.key.slice(rel.length + 1)} is ${f.lines} lines (at most ${MAX_FUNCTION_LINES}; split it)`);
      }
    }
  }
  for (const key of Object.keys(LONG_FUNCTIONS)) if (!seen.has(key)) problems.push(`${key} is no longer over ${MAX_FUNCTION_LINES} lines: remove it from LONG_FUNCTIONS`);
  assert.deepEqual(problems, []);
});

test('the function-length check sees every kind of function, with its name, first line and length', () => {
  const body = (n: number): string => Array.from({ length: n }, (_, i) => `  const v${i} = ${i};`).join('\n');
  const text = [
    `export function long() {\n${body(119)}\n}`, // 121 lines
    `export const arrow = (): void => {\n${body(130)}\n};`,
    `export function ok() {\n${body(118)}\n}`, // 120 lines: allowed
    `class C {\n  method(): void {\n${body(125)}\n  }\n}`,
    `export function outer() {\n  return { inner: function () {\n${body(121)}\n  } };\n}`,
  ].join('\n');
  const got = longFunctions('src/x.ts', text).map((f) => `${f.key}:${f.line}:${f.lines}`);
  assert.deepEqual(got, ['src/x.ts:long:1:121', 'src/x.ts:arrow:122:132', 'src/x.ts:method:375:127', 'src/x.ts:outer:503:125', 'src/x.ts:inner:504:123']);
});

test('the checker catches each kind of wrong import', () => {
  const none = new Set<string>();
  const cases: Array<[string, string, RegExp]> = [
    ['solver/x.ts', "import { openState } from '../engine/index.js';", /solver may not import engine/],
    ['graph/x.ts', "import type { Op } from '../ops/index.js';", /graph may not import ops/],
    ['store/x.ts', "export { thing } from '../snapshot/index.js';", /store may not import snapshot/],
    ['oci/x.ts', "import '../store/index.js';", /oci may not import store/],
    ['solver/x.ts', "const m = await import('../executor/index.js');", /solver may not import executor/],
    ['solver/x.ts', "import { x } from '../graph/types.js';", /instead of graph\/index\.js/],
    ['graph/x.ts', "export * from './types.js';", /export \*/],
    ['graph/x.ts', 'export default function f() {}', /default export/],
    ['solver/x.ts', "import Database from 'better-sqlite3';", /may not use the package better-sqlite3/],
    ['solver/x.ts', "import fs from 'fs';", /not in PACKAGES/],
    ['nowhere/x.ts', "import fs from 'node:fs';", /not in a known part/],
  ];
  for (const [file, text, want] of cases) {
    const got = checkFile(file, text, none);
    assert.ok(got.some((p) => want.test(p)), `${file}: ${text}\n  expected ${want}, got ${JSON.stringify(got)}`);
  }
  // a commented-out import is not an import; a type-position import('node:x') is a builtin
  assert.deepEqual(checkFile('solver/x.ts', "// import { x } from '../engine/index.js';\n/* import '../ops/index.js' */", none), []);
  assert.deepEqual(checkFile('solver/x.ts', "let s: import('node:stream').Writable;", none), []);
  assert.equal(existsSync(SRC), true);
});
