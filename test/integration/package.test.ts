/**
 * The npm package as a new user meets it: `npm pack` of a copy of the checkout (its `prepack` builds dist/), the
 * tarball installed into a fresh project in a temp dir, a template type-checked there with `tsc --init`'s defaults
 * (plus `strict`) and with the node10, node16 and bundler resolutions, a CommonJS file loading kiln with `import()`,
 * and the template built both ways: `npx kiln build template.ts` and `npx tsx build.ts` (Template.build).
 * The install compiles better-sqlite3 from source (no prebuilt binary can be downloaded here): about two minutes.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { busyboxRootfsTar, imageFiles, integrationBlocker, repoRoot, requireIntegration } from '../helpers/kiln.js';

interface Run {
  code: number;
  out: string;
}

/** Run a command to its end (async, so the test runner's other files keep going); stdout and stderr together. */
function run(cmd: string, args: string[], cwd: string, env: NodeJS.ProcessEnv = {}): Promise<Run> {
  return new Promise((resolve) => {
    const p = spawn(cmd, args, { cwd, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    p.stdout.on('data', (c: Buffer) => (out += c.toString()));
    p.stderr.on('data', (c: Buffer) => (out += c.toString()));
    p.on('close', (code) => resolve({ code: code ?? -1, out }));
  });
}

function installedVersion(pkg: string): string {
  return (JSON.parse(readFileSync(path.join(repoRoot, 'node_modules', pkg, 'package.json'), 'utf8')) as { version: string }).version;
}

const TEMPLATE = `import { Template } from 'kiln';

export default Template()
  .fromImage('busybox:latest')
  .copy('hello.txt', '/hello.txt')
  .runCmd('cat /hello.txt > /copied.txt');
`;

const BUILD_SCRIPT = `import { Template } from 'kiln';

const t = Template()
  .fromImage('busybox:latest')
  .copy('hello.txt', '/hello.txt')
  .runCmd('cat /hello.txt > /copied.txt');
const info = await Template.build(t, { name: 'from-sdk:1', root: process.env.KILN_ROOT });
console.log('BUILD ' + JSON.stringify(info));
`;

/** A CommonJS file (.cts) reaching the ESM package the documented way: dynamic import(). */
const CJS_FILE = `async function main(): Promise<void> {
  const { Template } = await import('kiln');
  process.stdout.write(Template().fromImage('busybox:latest').runCmd('true').toDockerfile());
}
void main();
`;

describe('npm package: pack, install, type-check, build', { concurrency: false }, () => {
  let tmp = '';
  let tarball = '';
  let proj = '';
  let root = '';

  before(async () => {
    if (integrationBlocker()) return;
    tmp = mkdtempSync(path.join(tmpdir(), 'kiln-package-'));
    // pack a copy (its prepack removes and rebuilds dist/), so the checkout's dist/ is never rebuilt under other tests
    const copy = path.join(tmp, 'checkout');
    mkdirSync(copy);
    for (const f of ['package.json', 'package-lock.json', 'tsconfig.json', 'README.md', 'LICENSE', 'bin', 'scripts', 'src', 'dist']) {
      if (existsSync(path.join(repoRoot, f))) cpSync(path.join(repoRoot, f), path.join(copy, f), { recursive: true });
    }
    // a stale file in dist/ must not reach the package
    mkdirSync(path.join(copy, 'dist', 'stale'), { recursive: true });
    writeFileSync(path.join(copy, 'dist', 'stale', 'old.test.js'), '');
    symlinkSync(path.join(repoRoot, 'node_modules'), path.join(copy, 'node_modules'));
    const packed = await run('npm', ['pack', '--pack-destination', tmp, '--loglevel=error'], copy);
    assert.equal(packed.code, 0, packed.out);
    tarball = path.join(tmp, `kiln-${(JSON.parse(readFileSync(path.join(copy, 'package.json'), 'utf8')) as { version: string }).version}.tgz`);
    assert.ok(existsSync(tarball), `npm pack made no ${tarball}: ${packed.out}`);
  });

  after(() => {
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });

  test('the tarball holds the built package and nothing of the tests', async (t) => {
    if (!requireIntegration(t)) return;
    const list = await run('tar', ['tzf', tarball], tmp);
    assert.equal(list.code, 0, list.out);
    const files = list.out.split('\n').filter(Boolean);
    for (const f of ['package/package.json', 'package/README.md', 'package/LICENSE', 'package/bin/kiln', 'package/dist/kiln.mjs', 'package/dist/api/index.js', 'package/dist/api/index.d.ts', 'package/dist/cli/index.js']) {
      assert.ok(files.includes(f), `${f} is missing from the package`);
    }
    const unwanted = files.filter((f) => /\.test\.|\/testing\/|\.map$|^package\/(src|test|bench|examples)\/|\/stale\//.test(f));
    assert.deepEqual(unwanted, []);
  });

  test('installed in a fresh project: types resolve with tsc --init defaults, node10, node16 and bundler', async (t) => {
    if (!requireIntegration(t)) return;
    proj = path.join(tmp, 'project');
    mkdirSync(proj);
    assert.equal((await run('npm', ['init', '-y'], proj)).code, 0);
    assert.equal((await run('npm', ['pkg', 'set', 'type=module'], proj)).code, 0);
    const inst = await run(
      'npm',
      ['install', '--no-audit', '--no-fund', '--prefer-offline', '--loglevel=error', tarball, `typescript@${installedVersion('typescript')}`, `tsx@${installedVersion('tsx')}`, `@types/node@${installedVersion('@types/node')}`],
      proj,
      { JOBS: '2' },
    );
    assert.equal(inst.code, 0, inst.out);
    writeFileSync(path.join(proj, 'template.ts'), TEMPLATE);
    writeFileSync(path.join(proj, 'build.ts'), BUILD_SCRIPT);
    writeFileSync(path.join(proj, 'load.cts'), CJS_FILE);
    writeFileSync(path.join(proj, 'hello.txt'), 'hello from the package\n');
    const init = await run('npx', ['tsc', '--init', '--strict'], proj);
    assert.equal(init.code, 0, init.out);
    // the one change tsc's own message asks for, as build.ts reads process.env
    const tsconfig = path.join(proj, 'tsconfig.json');
    writeFileSync(tsconfig, readFileSync(tsconfig, 'utf8').replace(/"types":\s*\[\]/, '"types": ["node"]'));
    const tsc = await run('npx', ['tsc', '--noEmit', '-p', '.'], proj);
    assert.equal(tsc.code, 0, `tsc --init defaults: ${tsc.out}`);
    for (const [mod, res] of [['commonjs', 'node10'], ['node16', 'node16'], ['esnext', 'bundler']] as const) {
      const r = await run('npx', ['tsc', '--noEmit', '--strict', '--skipLibCheck', '--module', mod, '--moduleResolution', res, 'template.ts'], proj);
      assert.equal(r.code, 0, `${res}: ${r.out}`);
    }
    // the types are real: a step on a template with no base is a type error
    writeFileSync(path.join(proj, 'bad.ts'), "import { Template } from 'kiln';\nexport const t = Template().copy('a', '/a');\n");
    const bad = await run('npx', ['tsc', '--noEmit', '-p', '.'], proj);
    rmSync(path.join(proj, 'bad.ts'));
    assert.notEqual(bad.code, 0);
    assert.match(bad.out, /bad\.ts.*Property 'copy' does not exist/);
    // CommonJS reaches it through import()
    const cjs = await run('npx', ['tsx', 'load.cts'], proj);
    assert.equal(cjs.code, 0, cjs.out);
    assert.match(cjs.out, /^FROM busybox:latest\nRUN true/m);
  });

  test('the installed package builds: npx kiln build template.ts and npx tsx build.ts', async (t) => {
    if (!requireIntegration(t)) return;
    assert.ok(proj && existsSync(path.join(proj, 'node_modules', 'kiln')), 'the install test did not run');
    root = path.join(tmp, 'root');
    const imp = await run('npx', ['kiln', 'import', '--root', root, busyboxRootfsTar(), 'busybox:latest'], proj);
    assert.equal(imp.code, 0, imp.out);
    const cli = await run('npx', ['kiln', 'build', '--root', root, '--progress=plain', '-t', 'from-cli:1', 'template.ts'], proj);
    assert.equal(cli.code, 0, cli.out);
    const digest = /image (sha256:[0-9a-f]{64})/.exec(cli.out)?.[1];
    assert.ok(digest, cli.out);
    const files = await imageFiles(root, digest);
    assert.equal(files.get('copied.txt')?.content, 'hello from the package\n');

    const sdk = await run('npx', ['tsx', 'build.ts'], proj, { KILN_ROOT: root });
    assert.equal(sdk.code, 0, sdk.out);
    const info = JSON.parse(/^BUILD (.*)$/m.exec(sdk.out)?.[1] ?? 'null') as { name: string; digest: string; steps: Array<{ cached: boolean }> } | null;
    assert.ok(info, sdk.out);
    assert.equal(info.name, 'from-sdk:1');
    // the same template from the same folder: the same image, every step a cache hit
    assert.equal(info.digest, digest);
    assert.ok(info.steps.every((s) => s.cached), JSON.stringify(info.steps));
  });
});
