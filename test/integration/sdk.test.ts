/**
 * The template SDK building real images: the cache rules of the seed documents (one test each), skipCache with early
 * cutoff, language caches that fetch only new packages and never reach the image, `kiln build template.ts`, and
 * zero-config app builds. Bases: Debian with python3+pip and with nodejs+npm (debootstrap, cached under /var/tmp),
 * tagged as the SDK's default base names. pip reads a loopback index of wheels made here; npm goes through a
 * counting loopback proxy to this machine's registry, or straight to it with the machine's CA bundle.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, cpSync, mkdtempSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { DEFAULT_BASE_IMAGES, Template, type BuildInfo, type BuildOptions, type TemplateFinal } from '../../src/api/index.js';
import { listLayer } from '../../src/layer/index.js';
import { build, cleanup, imageFiles, integrationBlocker, kiln, kilnSync, newContext, newRoot, readImage, repoRoot, requireIntegration, busyboxRootfsTar } from '../helpers/kiln.js';
import { machineCaBundle, machineRegistry, sdkBaseTar, startNpmProxy, startPyIndex, uniqueName, type NpmProxy, type PyIndex } from '../helpers/sdk-fixtures.js';

/** step text without the `[n/m] ` prefix → cached, FROM left out */
function cached(info: { steps: Array<{ name: string; cached: boolean }> }): Array<[string, boolean]> {
  return info.steps.filter((s) => !/\] FROM /.test(s.name)).map((s) => [s.name.replace(/^\[[^\]]*\]\s*/, ''), s.cached]);
}

function cachedFlags(info: { steps: Array<{ name: string; cached: boolean }> }): boolean[] {
  return cached(info).map(([, c]) => c);
}

/** Paths under /cache in any layer of the image. */
async function cachePathsInLayers(root: string, digest: string): Promise<string[]> {
  const { manifest } = await readImage(root, digest);
  const found: string[] = [];
  for (const l of manifest.layers) {
    const entries = await listLayer({ source: path.join(root, 'content', 'blobs', 'sha256', l.digest.slice(7)) });
    for (const e of entries) if (/^(\.\/)?cache(\/|$)/.test(e.path)) found.push(e.path);
  }
  return found;
}

describe('template SDK: real builds', { concurrency: false }, () => {
  let root = '';
  let ctx = '';
  let pyIndex: PyIndex | undefined;
  let npmProxy: NpmProxy | undefined;
  // pip caches downloads from a plain-http index only when its host is trusted
  const pipEnv = (): Record<string, string> => ({ PIP_INDEX_URL: pyIndex!.url, PIP_TRUSTED_HOST: '127.0.0.1' });
  const pipFlags = (): string[] => Object.entries(pipEnv()).flatMap(([k, v]) => ['--build-env', `${k}=${v}`]);

  const sdkBuild = (t: TemplateFinal, opts: BuildOptions = {}): Promise<BuildInfo> => Template.build(t, { root, contextPath: ctx, ...opts });

  before(async () => {
    if (integrationBlocker()) return;
    root = await newRoot();
    ctx = await newContext({ 'app/x.txt': 'one\n', 'f.txt': 'f\n', 'requirements.txt': 'numpy\n' });
    for (const [kind, name] of [['python', DEFAULT_BASE_IMAGES.python], ['node', DEFAULT_BASE_IMAGES.node]] as const) {
      const r = kilnSync(['import', '--root', root, sdkBaseTar(kind), name]);
      if (r.code !== 0) throw new Error(`import ${kind} base: ${r.stderr}`);
    }
    pyIndex = await startPyIndex([
      { name: 'numpy', version: '1.26.4', size: 300_000 },
      { name: 'pandas', version: '2.2.2', size: 200_000 },
      { name: 'matplotlib', version: '3.8.4', size: 150_000 },
      { name: 'humanize', version: '4.9.0', size: 20_000 },
    ]);
    npmProxy = await startNpmProxy();
  });
  after(async () => {
    await pyIndex?.close();
    await npmProxy?.close();
    if (root) await cleanup(root, ctx);
  });

  // ---- the seed documents' invalidation rules, one test each (busybox base: fast)

  test('changing a step\'s arguments invalidates that step and every later one', async (t) => {
    if (!requireIntegration(t)) return;
    const make = (pkgs: string): TemplateFinal =>
      Template().fromImage('busybox').runCmd('echo base > /base').runCmd(`echo ${pkgs} > /pkgs`).setEnv('DEBUG', 'true').runCmd('cat /pkgs > /copy');
    const a = await sdkBuild(make('numpy pandas'));
    assert.deepEqual(cachedFlags(a), [false, false, false, false]);
    const again = await sdkBuild(make('numpy pandas'));
    assert.deepEqual(cachedFlags(again), [true, true, true, true], 'unchanged: every step cached');
    const b = await sdkBuild(make('numpy pandas matplotlib'));
    assert.deepEqual(cached(b), [
      ['RUN echo base > /base', true],
      ['RUN echo numpy pandas matplotlib > /pkgs', false],
      ['ENV DEBUG="true"', false],
      ['RUN cat /pkgs > /copy', false],
    ]);
  });

  test('changing the step order changes the keys', async (t) => {
    if (!requireIntegration(t)) return;
    const curl = 'echo curl >> /order';
    const numpy = 'echo numpy >> /order';
    const first = await sdkBuild(Template().fromImage('busybox').runCmd(curl).runCmd(numpy));
    assert.deepEqual(cachedFlags(first), [false, false]);
    const swapped = await sdkBuild(Template().fromImage('busybox').runCmd(numpy).runCmd(curl));
    assert.deepEqual(cachedFlags(swapped), [false, false], 'the same steps in another order are other cache entries');
    const files = await imageFiles(root, swapped.digest);
    assert.equal(files.get('order')?.content, 'numpy\ncurl\n');
    assert.deepEqual(cachedFlags(await sdkBuild(Template().fromImage('busybox').runCmd(curl).runCmd(numpy))), [true, true]);
  });

  test('a different base image (by digest, same name) is a different cache', async (t) => {
    if (!requireIntegration(t)) return;
    const name = uniqueName('sdk-base');
    const tpl = Template().fromImage(name).copy('f.txt', '/f.txt').setEnv('A', '1');
    assert.equal(kilnSync(['import', '--root', root, busyboxRootfsTar(), name]).code, 0);
    assert.deepEqual(cachedFlags(await sdkBuild(tpl)), [false, false]);
    assert.deepEqual(cachedFlags(await sdkBuild(tpl)), [true, true]);
    const other = mkdtempSync(path.join(tmpdir(), 'kiln-sdk-base-'));
    writeFileSync(path.join(other, 'marker'), 'another base\n');
    assert.equal(kilnSync(['import', '--root', root, other, name]).code, 0, 'same name, other content');
    const moved = await sdkBuild(tpl);
    assert.deepEqual(cachedFlags(moved), [false, false], 'the name is the same, the digest is not');
    assert.equal(kilnSync(['import', '--root', root, busyboxRootfsTar(), name]).code, 0, 'back to the first digest');
    assert.deepEqual(cachedFlags(await sdkBuild(tpl)), [true, true]);
    await cleanup(other);
  });

  test('copy() is invalidated by the content or mode of its files, never by their mtime alone', async (t) => {
    if (!requireIntegration(t)) return;
    const tpl = Template().fromImage('busybox').copy('app/', '/app/').runCmd('cat /app/x.txt > /seen');
    const x = path.join(ctx, 'app', 'x.txt');
    const first = await sdkBuild(tpl);
    assert.deepEqual(cachedFlags(first), [false, false]);
    const later = new Date(Date.now() + 3_600_000);
    utimesSync(x, later, later);
    assert.deepEqual(cachedFlags(await sdkBuild(tpl)), [true, true], 'a touched file keeps the copy cached');
    chmodSync(x, 0o755);
    const mode = await sdkBuild(tpl);
    assert.deepEqual(cachedFlags(mode), [false, false], 'a mode change invalidates the copy and later steps');
    assert.equal((await imageFiles(root, mode.digest)).get('app/x.txt')?.mode, 0o755);
    writeFileSync(x, 'two\n');
    const content = await sdkBuild(tpl);
    assert.deepEqual(cachedFlags(content), [false, false], 'a content change invalidates the copy and later steps');
    assert.equal((await imageFiles(root, content.digest)).get('seen')?.content, 'two\n');
  });

  // ---- skipCache and early cutoff

  test('skipCache(): the step always runs; later steps stay cached when its output is identical', async (t) => {
    if (!requireIntegration(t)) return;
    const tpl = Template().fromImage('busybox').runCmd('echo same > /same && touch /same').skipCache().runCmd('cat /same > /after');
    assert.deepEqual(cachedFlags(await sdkBuild(tpl)), [false, false]);
    const again = await sdkBuild(tpl);
    assert.deepEqual(cached(again), [
      ['RUN echo same > /same && touch /same', false],
      ['RUN cat /same > /after', true],
    ]);
  });

  test('skipCache(): when the step\'s output changes, later steps rebuild', async (t) => {
    if (!requireIntegration(t)) return;
    const tpl = Template().fromImage('busybox').runCmd('cat /proc/sys/kernel/random/uuid > /stamp').skipCache().runCmd('cat /stamp > /after');
    const a = await sdkBuild(tpl);
    const b = await sdkBuild(tpl);
    assert.deepEqual(cachedFlags(b), [false, false]);
    const fa = await imageFiles(root, a.digest);
    const fb = await imageFiles(root, b.digest);
    assert.notEqual(fa.get('after')?.content, fb.get('after')?.content);
    assert.equal(fb.get('after')?.content, fb.get('stamp')?.content);
  });

  test('Template.build({ skipCache: true }) runs every step', async (t) => {
    if (!requireIntegration(t)) return;
    const tpl = Template().fromImage('busybox').runCmd('echo a > /a').setEnv('K', 'v');
    await sdkBuild(tpl);
    assert.deepEqual(cachedFlags(await sdkBuild(tpl)), [true, true]);
    const logs: string[] = [];
    const events: string[] = [];
    const info = await sdkBuild(tpl, { skipCache: true, name: uniqueName('sdk-nocache'), onLog: (l) => logs.push(l.message), onProgress: (e) => events.push(e.type) });
    assert.deepEqual(cachedFlags(info), [false, false]);
    assert.match(info.name, /^sdk-nocache-[0-9a-f]+:latest$/);
    assert.ok(events.includes('start') && events.includes('done'), events.join(','));
  });

  // ---- language caches

  test('pip: adding one package downloads only that package; /cache is in no layer', async (t) => {
    if (!requireIntegration(t)) return;
    const py = Template().fromPythonImage().setWorkdir('/work');
    const first = await sdkBuild(py.pipInstall('numpy', 'pandas'), { env: pipEnv() });
    const got1 = pyIndex!.wheelsFetched().map((l) => path.basename(l.path)).sort();
    assert.deepEqual(got1, ['numpy-1.26.4-py3-none-any.whl', 'pandas-2.2.2-py3-none-any.whl']);
    const mark = pyIndex!.log.length;
    const second = await sdkBuild(py.pipInstall('numpy', 'pandas', 'matplotlib'), { env: pipEnv() });
    assert.deepEqual(cachedFlags(second), [true, false], 'workdir cached, the changed pip step rebuilt');
    const got2 = pyIndex!.wheelsFetched(mark);
    assert.deepEqual(got2.map((l) => path.basename(l.path)), ['matplotlib-3.8.4-py3-none-any.whl'], 'only the new package is fetched');
    const bytes = got2.reduce((a, l) => a + l.bytes, 0);
    assert.ok(bytes > 150_000 && bytes < 200_000, `fetched ${bytes} bytes: the size of the matplotlib wheel`);
    const files = await imageFiles(root, second.digest);
    assert.ok([...files.keys()].some((f) => /(site|dist)-packages\/matplotlib\/__init__\.py$/.test(f)), 'matplotlib is installed');
    assert.ok([...files.keys()].some((f) => /(site|dist)-packages\/numpy\/__init__\.py$/.test(f)), 'numpy is installed again (from the cache)');
    assert.deepEqual(await cachePathsInLayers(root, first.digest), []);
    assert.deepEqual(await cachePathsInLayers(root, second.digest), []);
    const cfg = (await readImage(root, second.digest)).config;
    assert.equal(JSON.stringify(cfg).includes('127.0.0.1'), false, 'the index address is in no image config or history');
  });

  test('pipInstall({ requirements }): the file is read for the key, and never lands in the image', async (t) => {
    if (!requireIntegration(t)) return;
    const tpl = Template().fromPythonImage().pipInstall({ requirements: 'requirements.txt' });
    const a = await sdkBuild(tpl, { env: pipEnv() });
    assert.deepEqual(cachedFlags(await sdkBuild(tpl, { env: pipEnv() })), [true]);
    writeFileSync(path.join(ctx, 'requirements.txt'), 'numpy\nhumanize\n');
    const b = await sdkBuild(tpl, { env: pipEnv() });
    assert.deepEqual(cachedFlags(b), [false], 'a changed requirements file reruns the install');
    const files = await imageFiles(root, b.digest);
    assert.ok([...files.keys()].some((f) => /(site|dist)-packages\/humanize\/__init__\.py$/.test(f)));
    assert.equal([...files.keys()].some((f) => f.includes('kiln-requirements')), false);
    assert.notEqual(a.digest, b.digest);
  });

  test('npm: adding one package fetches only its tarball; /cache is in no layer', async (t) => {
    if (!requireIntegration(t)) return;
    const env = { NPM_CONFIG_REGISTRY: npmProxy!.url };
    const node = Template().fromNodeImage().setWorkdir('/app');
    const first = await sdkBuild(node.npmInstall('escape-html@1.0.3'), { env });
    assert.deepEqual(npmProxy!.tarballsFetched().map((l) => path.basename(l.path)), ['escape-html-1.0.3.tgz']);
    const mark = npmProxy!.log.length;
    const second = await sdkBuild(node.npmInstall('escape-html@1.0.3', 'vary@1.1.2'), { env });
    assert.deepEqual(cachedFlags(second), [true, false]);
    const got = npmProxy!.tarballsFetched(mark);
    assert.deepEqual(got.map((l) => path.basename(l.path)), ['vary-1.1.2.tgz'], 'only the new package tarball is fetched');
    assert.ok(got[0]!.bytes > 0 && got[0]!.bytes < 20_000, `${got[0]!.bytes} bytes`);
    const files = await imageFiles(root, second.digest);
    assert.ok(files.has('app/node_modules/vary/package.json') && files.has('app/node_modules/escape-html/package.json'));
    assert.deepEqual(await cachePathsInLayers(root, first.digest), []);
    assert.deepEqual(await cachePathsInLayers(root, second.digest), []);
  });

  // ---- the CLI and the examples

  test('kiln build template.ts: the data-science example, every SDK step (setEnv too) in kiln.steps', async (t) => {
    if (!requireIntegration(t)) return;
    const file = path.join(repoRoot, 'examples', 'python-data-science', 'template.ts');
    const tag = uniqueName('data-science');
    const r = await build(root, file, ['-t', tag, ...pipFlags()]);
    assert.equal(r.code, 0, r.stderr);
    const names = r.meta['kiln.steps'].map((s) => s.name.replace(/^\[[^\]]*\]\s*/, ''));
    assert.match(names[0]!, /^FROM python:/);
    assert.ok(names.some((n) => n.startsWith('ENV PYTHONUNBUFFERED="1" MPLBACKEND="Agg"')), names.join('\n'));
    assert.ok(names.some((n) => /pip install numpy pandas matplotlib$/.test(n)));
    assert.ok(names.some((n) => n === 'COPY analysis.py ./'));
    assert.equal(names.length, 1 + 6 + 2 + 1, 'FROM, one per step, CMD + LABEL for setStartCmd, and the start check');
    assert.equal(names[names.length - 1], 'START CHECK waitForPort(8888)');
    const { config } = await readImage(root, r.meta['containerimage.digest']);
    assert.deepEqual(config.config.Cmd, ['python3', '-m', 'http.server', '8888']);
    assert.equal(JSON.parse(config.config.Labels?.['kiln.template.ready'] ?? '{}').port, 8888);
    assert.ok(config.config.Env?.includes('MPLBACKEND=Agg'));
    const images = kilnSync(['images', '--root', root, '--format', 'json']);
    assert.ok(images.stdout.includes(tag));
    const again = await build(root, file, pipFlags());
    assert.ok(again.meta['kiln.steps'].every((s) => s.cached), 'a rebuild is fully cached');
  });

  test('the node web app example builds against this machine\'s registry with its CA bundle', async (t) => {
    if (!requireIntegration(t)) return;
    const file = path.join(repoRoot, 'examples', 'node-web-app', 'template.ts');
    const r = await build(root, file, ['--build-env', `NPM_CONFIG_REGISTRY=${machineRegistry()}`, '--ca-bundle', machineCaBundle()]);
    assert.equal(r.code, 0, r.stderr);
    const files = await imageFiles(root, r.meta['containerimage.digest']);
    assert.ok(files.has('app/node_modules/ms/package.json'), 'ms installed from the registry');
    assert.ok(files.has('app/server.js'));
    assert.equal([...files.keys()].some((f) => f.startsWith('run/secrets/kiln')), false, 'the CA bundle mount leaves nothing behind');
    const { config } = await readImage(root, r.meta['containerimage.digest']);
    assert.equal(JSON.stringify(config).includes(new URL(machineRegistry()).host), false, 'no registry host in the image');
  });

  test('zero-config: kiln plan prints only the Dockerfile; a code change rebuilds only the layers after the install', async (t) => {
    if (!requireIntegration(t)) return;
    const app = mkdtempSync(path.join(tmpdir(), 'kiln-zero-config-'));
    cpSync(path.join(repoRoot, 'examples', 'zero-config-app'), app, { recursive: true });
    const plan = await kiln(['plan', app]);
    assert.equal(plan.code, 0, plan.stderr);
    assert.equal(plan.stderr.replace(/npm warn.*\n/g, ''), '');
    const lines = plan.stdout.trimEnd().split('\n');
    assert.deepEqual(lines.slice(0, 5), [`FROM ${DEFAULT_BASE_IMAGES.python}`, 'WORKDIR /app', 'COPY setup.sh ./', 'RUN sh ./setup.sh', 'COPY requirements.txt ./']);
    assert.equal(lines[6], 'COPY . .');
    const flags = pipFlags();
    const first = await build(root, app, flags);
    assert.equal(first.code, 0, first.stderr);
    const files = await imageFiles(root, first.meta['containerimage.digest']);
    assert.equal(files.get('var/lib/greeter/README')?.content, 'greeter data\n', 'setup.sh ran');
    assert.ok([...files.keys()].some((f) => /(site|dist)-packages\/humanize\/__init__\.py$/.test(f)), 'requirements installed');
    assert.ok(files.has('app/main.py'));
    writeFileSync(path.join(app, 'main.py'), 'print("changed")\n');
    const second = await build(root, app, flags);
    assert.equal(second.code, 0, second.stderr);
    const steps = second.meta['kiln.steps'].map((s) => [s.name.replace(/^\[[^\]]*\]\s*/, ''), s.cached] as const);
    const copyAll = steps.findIndex(([n]) => n === 'COPY . .');
    assert.ok(copyAll > 0);
    for (const [n, c] of steps.slice(0, copyAll)) assert.equal(c, true, `${n} stays cached`);
    assert.deepEqual(steps.slice(copyAll).map(([, c]) => c), steps.slice(copyAll).map(() => false), 'the code copy and what follows rebuild');
    const files2 = await imageFiles(root, second.meta['containerimage.digest']);
    assert.equal(files2.get('app/main.py')?.content, 'print("changed")\n');
    await cleanup(app);
  });
});
