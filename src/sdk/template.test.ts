import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseDockerfile } from '../frontend/dockerfile/instructions/index.js';
import { isBuildError } from '../errors/index.js';
import { DEFAULT_BASE_IMAGES, defaultBuildLogger, logEntry, prepareTemplateBuild, templateStartCheck, Template, waitForFile, waitForPort, waitForProcess, waitForTimeout, waitForURL, type TemplateFinal } from './index.js';

const here = path.dirname(fileURLToPath(import.meta.url));

function lines(t: TemplateFinal): string[] {
  return t.toDockerfile().trimEnd().split('\n');
}

describe('Template builder', () => {
  test('Template() and new Template() both work; base shortcuts name the images', () => {
    assert.equal(lines(Template().fromPythonImage('3.11-slim'))[0], 'FROM python:3.11-slim');
    assert.equal(lines(new Template().fromNodeImage('20-slim'))[0], 'FROM node:20-slim');
    assert.equal(lines(Template().fromDebianImage())[0], `FROM ${DEFAULT_BASE_IMAGES.debian}`);
    assert.equal(lines(Template().fromUbuntuImage('22.04'))[0], 'FROM ubuntu:22.04');
    assert.equal(lines(Template().fromPythonImage())[0], `FROM ${DEFAULT_BASE_IMAGES.python}`);
    assert.equal(lines(new Template('busybox:latest'))[0], 'FROM busybox:latest');
  });

  test('is immutable: adding a step returns a new template and leaves the old one as it was', () => {
    const a = Template().fromPythonImage().pipInstall('numpy');
    const b = a.pipInstall('pandas');
    assert.equal(lines(a).length, 2);
    assert.equal(lines(b).length, 3);
    const data = (a as unknown as Record<symbol, { steps: unknown[] }>)[Symbol.for('kiln.template.data')]!;
    assert.throws(() => data.steps.push({ type: 'setUser', user: 'x' }), TypeError);
    assert.equal(lines(a).length, 2);
    assert.equal(Object.isFrozen(a), true);
  });

  test('package lists as separate arguments or as one array render the same', () => {
    const a = Template().fromPythonImage().aptInstall('curl', 'git').pipInstall('numpy', 'pandas').npmInstall('a', 'b', { global: true });
    const b = Template().fromPythonImage().aptInstall(['curl', 'git']).pipInstall(['numpy', 'pandas']).npmInstall(['a', 'b'], { global: true });
    assert.equal(a.toDockerfile(), b.toDockerfile());
    assert.match(a.toDockerfile(), /npm install -g --no-audit --no-fund a b$/m);
  });

  test('package steps use the language cache mounts and their env; the uid follows the step user', () => {
    const t = Template().fromPythonImage().pipInstall('numpy', 'pandas>=2').setUser('1000').npmInstall('express');
    const [, pip, , npm] = lines(t);
    assert.match(pip!, /^RUN --mount=type=cache,id=lang-pip,target=\/cache\/pip,[^ ]*uid=0,gid=0/);
    assert.match(pip!, / PIP_CACHE_DIR=\/cache\/pip .*python3 -m pip install numpy 'pandas>=2'$/);
    assert.match(npm!, /^RUN --mount=type=cache,id=lang-npm,target=\/cache\/npm,[^ ]*uid=1000,gid=1000/);
    assert.match(npm!, / NPM_CONFIG_CACHE=\/cache\/npm /);
  });

  test('every method renders one instruction per step, each parsed by the Dockerfile front end', () => {
    const t = Template()
      .fromDebianImage()
      .aptInstall('curl', { noInstallRecommends: true })
      .pipInstall({ requirements: 'requirements.txt' })
      .goInstall('golang.org/x/tools/gopls')
      .cargoInstall('ripgrep')
      .runCmd(['mkdir -p /data', 'echo ok > /data/x'])
      .copy(['a.txt', 'b c.txt'], '/app', { owner: 'user:user', mode: 0o640 })
      .remove('/tmp/x')
      .rename('/a', '/b', { force: true })
      .makeDir(['/d', '/e'], { mode: 0o750 })
      .makeSymlink('/usr/bin/python3', '/usr/local/bin/python')
      .setEnv('PATH', '/opt/bin:$PATH')
      .setEnvs({ A: 'x y', B: 'say "hi"' })
      .setWorkdir('/app')
      .setUser('user')
      .gitClone('https://example.com/r.git', '/src', { branch: 'main', depth: 1 })
      .setStartCmd('python3 -m http.server 8000', waitForPort(8000));
    const json = t.toJSON();
    assert.equal(json.steps.length, 16);
    for (const s of json.steps) assert.equal(s.instructions.length, s.type === 'setStartCmd' ? 2 : 1, s.type);
    const df = parseDockerfile(t.toDockerfile(), { file: 'Dockerfile' });
    const cmds = df.stages[0]!.commands.map((c) => c.name);
    assert.deepEqual(cmds, ['run', 'run', 'run', 'run', 'run', 'copy', 'run', 'run', 'run', 'run', 'env', 'env', 'workdir', 'user', 'run', 'cmd', 'label']);
    const text = t.toDockerfile();
    assert.match(text, /--mount=type=bind,target=\/tmp\/kiln-requirements\/requirements\.txt,source=requirements\.txt .*-r \/tmp\/kiln-requirements\/requirements\.txt/);
    assert.match(text, /^COPY --chown=user:user --chmod=0640 \["a\.txt", "b c\.txt", "\/app\/"\]$/m);
    assert.match(text, /^RUN rm -rf \/tmp\/x$/m);
    assert.match(text, /^RUN mkdir -p -m 0750 \/d \/e$/m);
    assert.match(text, /^ENV A="x y" B="say \\"hi\\""$/m);
    assert.match(text, /go install golang\.org\/x\/tools\/gopls@latest$/m);
    assert.match(text, /^CMD \["\/bin\/sh","-c","python3 -m http.server 8000"\]$/m);
    assert.match(text, /kiln\.template\.ready="\{\\"kind\\":\\"port\\",\\"port\\":8000/);
  });

  test('apt steps and runCmd({user}) switch user around the step and back', () => {
    const t = Template().fromDebianImage().setUser('user').aptInstall('curl').runCmd('id', { user: 'root' }).runCmd('whoami');
    const l = lines(t);
    assert.deepEqual(l.filter((x) => x.startsWith('USER')), ['USER user', 'USER root', 'USER user', 'USER root', 'USER user']);
    assert.equal(l[l.length - 1], 'RUN whoami');
  });

  test('a multi-line command becomes a heredoc that the front end reads as one RUN', () => {
    const t = Template().fromDebianImage().runCmd('echo one\necho two');
    const df = parseDockerfile(t.toDockerfile(), { file: 'Dockerfile' });
    assert.equal(df.stages[0]!.commands.length, 1);
    assert.equal(df.stages[0]!.commands[0]!.name, 'run');
  });

  test('skipCache marks the previous step; the build gets it as that step\'s own property', async () => {
    const t = Template().fromDebianImage().runCmd('a').runCmd('git clone x /app').skipCache().setStartCmd('x').skipCache();
    const p = await prepareTemplateBuild(t.toJSON() && (t as unknown as Record<symbol, never>)[Symbol.for('kiln.template.data')]);
    assert.deepEqual(p.steps.map((s) => s.noCache === true), [false, true, true]);
    assert.deepEqual(p.steps.map((s) => s.commands.map((c) => c.name)), [['run'], ['run'], ['cmd', 'label']], 'setStartCmd is CMD + LABEL');
    assert.equal(t.toJSON().steps[1]!.skipCache, true);
    assert.equal(t.toJSON().steps[0]!.skipCache, undefined);
    assert.throws(() => Template().fromDebianImage().skipCache(), (e: unknown) => isBuildError(e) && e.code === 'ERR_KILN_TEMPLATE_INVALID');
  });

  test('build env and CA bundle reach network steps as secrets, never as text', async () => {
    const t = Template().fromPythonImage().pipInstall('numpy').makeDir('/x');
    const data = (t as unknown as Record<symbol, never>)[Symbol.for('kiln.template.data')];
    const p = await prepareTemplateBuild(data, { env: { PIP_INDEX_URL: 'http://127.0.0.1:9/simple/' }, caBundle: '/etc/ssl/certs/ca-certificates.crt' });
    try {
      assert.doesNotMatch(p.dockerfileText, /127\.0\.0\.1/);
      const [, pip, mkdir] = p.dockerfileText.trimEnd().split('\n');
      assert.match(pip!, /--mount=type=secret,id=kiln-env-PIP_INDEX_URL,env=PIP_INDEX_URL,required=true/);
      assert.match(pip!, /--mount=type=secret,id=kiln-env-NODE_EXTRA_CA_CERTS,env=NODE_EXTRA_CA_CERTS/);
      assert.match(pip!, /--mount=type=secret,id=kiln-ca-bundle,target=\/run\/secrets\/kiln-ca-bundle/);
      assert.doesNotMatch(mkdir!, /secret/, 'steps without network get no secrets');
      const envSecret = p.secrets.find((s) => s.id === 'kiln-env-PIP_INDEX_URL')!;
      assert.equal(readFileSync(envSecret.file!, 'utf8'), 'http://127.0.0.1:9/simple/');
    } finally {
      await p.cleanup();
    }
  });

  test('copy({ resolveSymlinks: true }) is refused at build time, not silently ignored', async () => {
    const t = Template().fromDebianImage().copy('app/', '/app/', { resolveSymlinks: true });
    const data = (t as unknown as Record<symbol, never>)[Symbol.for('kiln.template.data')];
    await assert.rejects(prepareTemplateBuild(data), (e: unknown) => isBuildError(e) && e.code === 'ERR_KILN_NOT_SUPPORTED');
  });

  test('toJSON leaves credentials out and JSON.stringify uses it', () => {
    const t = Template().fromImage('registry.example.com/private/base:1', { username: 'me', password: 's3cret' }).setEnv('A', '1');
    const s = JSON.stringify(t);
    assert.doesNotMatch(s, /s3cret/);
    assert.deepEqual(JSON.parse(s).base, { type: 'image', ref: 'registry.example.com/private/base:1', private: true });
    assert.equal(JSON.parse(s).steps[0].instructions[0], 'ENV A="1"');
  });

  test('fromDockerfile (multi-stage) continues the last stage; fromTemplate shares base and steps', () => {
    const df = 'FROM busybox AS build\nRUN echo hi > /x\nFROM busybox\nCOPY --from=build /x /x\n';
    const t = Template().fromDockerfile(df).setEnv('A', '1');
    assert.equal(t.toDockerfile(), `${df}ENV A="1"\n`);
    const dir = mkdtempSync(path.join(os.tmpdir(), 'kiln-sdk-df-'));
    try {
      writeFileSync(path.join(dir, 'base.Dockerfile'), df);
      assert.equal(Template().fromDockerfile(path.join(dir, 'base.Dockerfile')).toDockerfile(), df);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    const base = Template().fromPythonImage().pipInstall('numpy');
    const ml = Template().fromTemplate(base).pipInstall('scikit-learn');
    assert.equal(ml.toDockerfile().startsWith(base.toDockerfile()), true);
  });

  test('no stack-frame guessing: the default context is unset (the build uses the working folder) unless a template file is loading', () => {
    const dataOf = (t: unknown): { defaultContext?: string } => (t as Record<symbol, { defaultContext?: string }>)[Symbol.for('kiln.template.data')]!;
    assert.equal(dataOf(Template().fromDebianImage()).defaultContext, undefined);
    const g = globalThis as Record<symbol, unknown>;
    g[Symbol.for('kiln.template.loading-dir')] = '/some/project';
    try {
      assert.equal(dataOf(Template().fromDebianImage()).defaultContext, '/some/project');
    } finally {
      delete g[Symbol.for('kiln.template.loading-dir')];
    }
  });

  test('misuse is a clear error', () => {
    const bad = (fn: () => unknown): void => assert.throws(fn, (e: unknown) => isBuildError(e) && e.code === 'ERR_KILN_TEMPLATE_INVALID');
    bad(() => Template().fromPythonImage().pipInstall());
    bad(() => Template().fromPythonImage().setEnv('1BAD', 'x'));
    bad(() => Template().fromPythonImage().copy('../secret', '/x'));
    bad(() => Template().fromPythonImage().copy('/etc/passwd', '/x'));
    bad(() => Template().fromPythonImage().makeDir('/x', { mode: 'rwx' }));
    bad(() => Template().fromPythonImage().runCmd('x', { caches: ['nosuchtool'] }) as never);
    bad(() => Template().fromImage('has space'));
    bad(() => Template().fromDockerfile('RUN echo no from\n'));
  });

  test('ready checks', () => {
    const port = waitForPort(3000);
    assert.equal(port.port, 3000);
    // ss where the image has it, else /proc/net/tcp (3000 = 0x0BB8, state 0A = LISTEN)
    assert.match(port.cmd, /^ss -tln 2>\/dev\/null \| grep -q ':3000 ' \|\| grep -qi ':0BB8 \[0-9A-F\]\*:0000 0A' \/proc\/net\/tcp/);
    assert.equal(waitForURL('http://localhost:8000/health').statusCode, 200);
    assert.match(waitForFile('/tmp/ready').cmd, /^test -e \/tmp\/ready$/);
    assert.match(waitForProcess('nginx').cmd, /pgrep -x nginx/);
    assert.equal(waitForTimeout(1500).cmd, 'sleep 2');
    assert.throws(() => waitForPort(70000));
  });

  test('E2B/HopX surface: base shortcuts, bunInstall, copyItems, setReadyCmd, registry credentials, logger', () => {
    assert.equal(Template().fromBaseImage().toDockerfile(), `FROM ${DEFAULT_BASE_IMAGES.base}\n`);
    assert.equal(Template().fromBunImage('1.2').toDockerfile(), 'FROM oven/bun:1.2\n');
    const bun = Template().fromBunImage().setWorkdir('/app').bunInstall('hono', { dev: true }).toDockerfile();
    assert.match(bun, /RUN --mount=type=cache,id=lang-bun,target=\/cache\/bun.* BUN_INSTALL_CACHE_DIR=\/cache\/bun bun add --dev hono/);
    assert.match(Template().fromBunImage().bunInstall().toDockerfile(), /bun install$/m);
    const items = Template().fromDebianImage().copyItems([{ src: 'a.txt', dest: '/a/' }, { src: ['b', 'c'], dest: '/bc/', mode: 0o755 }]);
    assert.deepEqual(items.toDockerfile(), Template().fromDebianImage().copy('a.txt', '/a/').copy(['b', 'c'], '/bc/', { mode: 0o755 }).toDockerfile());
    // a ready check alone: the image's own start command, this check
    const ready = Template().fromImage('srv:1').setReadyCmd(waitForPort(8080));
    const data = (ready as unknown as Record<symbol, Parameters<typeof templateStartCheck>[0]>)[Symbol.for('kiln.template.data')]!;
    assert.deepEqual(templateStartCheck(data), { readyCmd: waitForPort(8080).cmd, label: 'waitForPort(8080)' });
    const strReady = Template().fromImage('srv:1').setStartCmd('serve', 'test -e /ok');
    const d2 = (strReady as unknown as Record<symbol, Parameters<typeof templateStartCheck>[0]>)[Symbol.for('kiln.template.data')]!;
    assert.deepEqual(templateStartCheck(d2, { readyTimeoutMs: 5000, cpuCount: 2, memoryMB: 512 }), { cmd: 'serve', readyCmd: 'test -e /ok', label: 'ready command "test -e /ok"', timeoutMs: 5000, cpuCount: 2, memoryMB: 512 });
    // GCP: the key file becomes the _json_key password; toJSON still hides it
    const dir = mkdtempSync(path.join(os.tmpdir(), 'kiln-gcp-'));
    try {
      writeFileSync(path.join(dir, 'sa.json'), '{"type":"service_account"}');
      const gcp = Template().fromGCPRegistry('us-docker.pkg.dev/p/r/app:1', { serviceAccountJSON: path.join(dir, 'sa.json') });
      const base = (gcp as unknown as Record<symbol, { base: { credentials?: { username: string; password: string } } }>)[Symbol.for('kiln.template.data')]!.base;
      assert.deepEqual(base.credentials, { username: '_json_key', password: '{"type":"service_account"}' });
      assert.equal(JSON.stringify(gcp.toJSON()).includes('service_account'), false);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    assert.throws(() => Template().fromAWSRegistry('x.dkr.ecr.us-west-1.amazonaws.com/a:1', { accessKeyId: '', secretAccessKey: 's', region: 'r' }), (e: unknown) => isBuildError(e));
    const lines: string[] = [];
    const log = defaultBuildLogger({ write: (l) => lines.push(l) });
    log(logEntry('info', 'step one\nstep two\n', new Date('2026-01-01T10:11:12Z')));
    log(logEntry('debug', 'hidden'));
    assert.deepEqual(lines, ['10:11:12 INFO  step one\n', '10:11:12 INFO  step two\n']);
  });
});
