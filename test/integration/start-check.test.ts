/**
 * A template's start command proven at build time (issue 15, item 4): the build ends by running it in a container of
 * the final image until its ready check passes; a server that never comes up fails the build within the timeout,
 * naming the check, with the command's last output; a pass is cached like a step. Busybox base: httpd, wget, sleep.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { Template, waitForFile, waitForPort, waitForProcess, waitForTimeout, waitForURL, type BuildInfo } from '../../src/api/index.js';
import { isBuildError } from '../../src/errors/index.js';
import { cleanup, integrationBlocker, kiln, newContext, newRoot, repoRoot, requireIntegration } from '../helpers/kiln.js';

function startStep(info: BuildInfo): { name: string; cached: boolean; durationMs: number } | undefined {
  return info.steps.find((s) => s.name.startsWith('START CHECK'));
}

describe('start command proven at build time', { concurrency: false }, () => {
  let root = '';
  let ctx = '';

  before(async () => {
    if (integrationBlocker()) return;
    root = await newRoot();
    ctx = await newContext({ 'index.html': 'hello\n' });
  });

  after(async () => {
    await cleanup(...[root, ctx].filter(Boolean));
  });

  test('a server that comes up passes; the same image and start command are not checked again', async (t) => {
    if (!requireIntegration(t)) return;
    // a second of start-up before it listens: the first build waits for it
    const base = Template().fromImage('busybox:latest').copy('index.html', '/www/index.html');
    const tpl = base.setStartCmd('sleep 1; exec httpd -f -p 8000 -h /www', waitForPort(8000));
    const first = await Template.build(tpl, { root, contextPath: ctx, name: 'served:1' });
    const s1 = startStep(first);
    assert.ok(s1, JSON.stringify(first.steps));
    assert.equal(s1.name, 'START CHECK waitForPort(8000)');
    assert.equal(s1.cached, false);
    assert.ok(s1.durationMs >= 1000, `the check waited for the server: ${s1.durationMs} ms`);
    const again = await Template.build(tpl, { root, contextPath: ctx, name: 'served:1' });
    assert.deepEqual(startStep(again), { name: 'START CHECK waitForPort(8000)', cached: true, durationMs: 0 });
    // another start command on the same image is checked
    const other = await Template.build(base.setStartCmd('sleep 1; exec httpd -f -p 8000 -h /www', waitForURL('http://127.0.0.1:8000/index.html')), { root, contextPath: ctx });
    assert.equal(startStep(other)?.name, 'START CHECK waitForURL(http://127.0.0.1:8000/index.html)');
    assert.equal(startStep(other)?.cached, false);
  });

  test('memoryMB is the start command\'s memory limit: a command that needs more is killed and fails the check', async (t) => {
    if (!requireIntegration(t)) return;
    // 40 MB held in a shell variable, then the file the check waits for
    const cmd = 'x=$(head -c 40000000 /dev/zero | tr "\\0" a) && touch /tmp/ready; sleep 1000';
    const big = Template().fromImage('busybox:latest').runCmd('echo sized > /sized').setStartCmd(cmd, waitForFile('/tmp/ready'));
    const roomy = await Template.build(big, { root, contextPath: ctx, memoryMB: 256, readyTimeoutMs: 20_000 });
    assert.equal(startStep(roomy)?.cached, false, 'with 256 MiB the command comes up');
    await assert.rejects(Template.build(big, { root, contextPath: ctx, memoryMB: 16, readyTimeoutMs: 20_000 }), (err: unknown) => {
      assert.ok(isBuildError(err) && err.code === 'ERR_KILN_START_CHECK', String(err));
      return true;
    });
  });

  test('a server that never listens fails the build within the timeout, naming the check, with its last output', async (t) => {
    if (!requireIntegration(t)) return;
    const tpl = Template().fromImage('busybox:latest').runCmd('echo built > /built').setStartCmd('echo starting on 8001; echo still starting >&2; sleep 1000', waitForPort(8001));
    const started = Date.now();
    await assert.rejects(Template.build(tpl, { root, contextPath: ctx, name: 'never:1', readyTimeoutMs: 2000 }), (err: unknown) => {
      assert.ok(isBuildError(err) && err.code === 'ERR_KILN_START_CHECK', String(err));
      assert.match(err.message, /start command "echo starting on 8001; echo still starting >&2; sleep 1000" was not ready within 2 s \(ready check: waitForPort\(8001\)\)/);
      // stdout and stderr are separate pipes: both lines, in either order
      const last = err.message.split('last output:\n')[1]?.split('\n').sort();
      assert.deepEqual(last, ['  starting on 8001', '  still starting']);
      return true;
    });
    const took = Date.now() - started;
    assert.ok(took < 30_000, `failed after ${took} ms`);
    // the failed build named nothing
    const images = await kiln(['images', '--root', root, '--format', 'json']);
    assert.ok(!images.stdout.includes('never:1'), images.stdout);
  });

  test('a start command that exits fails at once with its status and output', async (t) => {
    if (!requireIntegration(t)) return;
    const tpl = Template().fromImage('busybox:latest').setStartCmd('echo cannot bind >&2; exit 3', waitForPort(8002));
    const started = Date.now();
    await assert.rejects(Template.build(tpl, { root, contextPath: ctx, readyTimeoutMs: 20_000 }), (err: unknown) => {
      assert.ok(isBuildError(err) && err.code === 'ERR_KILN_START_CHECK', String(err));
      assert.match(err.message, /exited with status 3 before its ready check passed \(ready check: waitForPort\(8002\)\)\nlast output:\n {2}cannot bind$/);
      return true;
    });
    assert.ok(Date.now() - started < 15_000, 'did not wait for the timeout');
  });

  test('every kind of ready check: file, process, timeout, a custom command', async (t) => {
    if (!requireIntegration(t)) return;
    const base = Template().fromImage('busybox:latest');
    const cases = [
      [base.setStartCmd('sleep 1; touch /tmp/ready; sleep 1000', waitForFile('/tmp/ready')), 'waitForFile(/tmp/ready)'],
      [base.setStartCmd(['sleep', '1000'], waitForProcess('sleep')), 'waitForProcess(sleep)'],
      [base.setStartCmd('sleep 1000', waitForTimeout(1000)), 'waitForTimeout(1000)'],
      [base.setStartCmd('mkdir /tmp/up; sleep 1000', 'test -d /tmp/up'), 'ready command "test -d /tmp/up"'],
    ] as const;
    for (const [tpl, label] of cases) {
      const info = await Template.build(tpl, { root, contextPath: ctx, readyTimeoutMs: 20_000 });
      assert.equal(startStep(info)?.name, `START CHECK ${label}`);
      assert.equal(startStep(info)?.cached, false);
    }
    // a ready check that can never pass fails, whatever its kind
    await assert.rejects(Template.build(base.setStartCmd('sleep 1000', waitForFile('/never')), { root, contextPath: ctx, readyTimeoutMs: 1500 }), /waitForFile\(\/never\)/);
  });

  test('kiln build template.ts runs the check too, with --ready-timeout', async (t) => {
    if (!requireIntegration(t)) return;
    const file = path.join(ctx, 'never.ts');
    writeFileSync(file, `import { Template, waitForPort } from ${JSON.stringify(path.join(repoRoot, 'src', 'sdk', 'index.ts'))};\nexport default Template().fromImage('busybox:latest').setStartCmd('sleep 1000', waitForPort(8003));\n`);
    const r = await kiln(['build', '--root', root, '--progress=plain', '--ready-timeout', '1.5', file]);
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /START CHECK waitForPort\(8003\)/);
    assert.match(r.stderr, /error: start command "sleep 1000" was not ready within 1\.5 s \(ready check: waitForPort\(8003\)\)/);
    assert.match(r.stderr, /ERR_KILN_START_CHECK/);
  });
});
