/**
 * E2B's SDK surface building for real (issue 15, item 3): `Template.build(t, alias, options)`, `onBuildLogs`,
 * `buildInBackground` / `getBuildStatus` / `exists` (local: no build service configured), and `fromImage(ref,
 * credentials)` whose credentials really reach the pull: a private base behind a loopback proxy that demands Basic
 * auth in front of a real registry.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Template, type LogEntry } from '../../src/api/index.js';
import { cleanup, integrationBlocker, kiln, newContext, newRoot, requireIntegration } from '../helpers/kiln.js';
import { AUTH_PASS as PASS, AUTH_USER as USER, skipWithoutRegistry, startAuthProxy, startRegistry, type TestRegistry } from '../helpers/registry.js';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

describe('SDK surface of E2B and HopX', { concurrency: false }, () => {
  let root = '';
  let ctx = '';
  let reg: TestRegistry | undefined;

  before(async () => {
    if (integrationBlocker()) return;
    root = await newRoot();
    ctx = await newContext({ 'hello.txt': 'hi\n' });
  });

  after(async () => {
    await reg?.stop();
    await cleanup(...[root, ctx].filter(Boolean));
  });

  test('Template.build(t, alias, options) names the image; onBuildLogs gets E2B log entries; exists finds it', async (t) => {
    if (!requireIntegration(t)) return;
    const tpl = Template().fromImage('busybox:latest').copy('hello.txt', '/hello.txt').runCmd('cat /hello.txt');
    const logs: LogEntry[] = [];
    assert.equal(await Template.exists('surface-alias', { root }), false);
    const info = await Template.build(tpl, 'surface-alias', { root, contextPath: ctx, cpuCount: 2, memoryMB: 512, onBuildLogs: (l) => logs.push(l) });
    assert.equal(info.name, 'surface-alias:latest');
    assert.equal(info.alias, 'surface-alias:latest');
    assert.equal(info.templateId, info.digest);
    assert.ok(info.buildId.length > 0);
    assert.ok(logs.some((l) => l.level === 'info' && /RUN cat \/hello\.txt: (start|CACHED)/.test(l.message)), logs.map(String).join('\n'));
    assert.ok(logs.every((l) => l.timestamp instanceof Date && typeof l.toString() === 'string'));
    assert.equal(await Template.exists('surface-alias', { root }), true);
    const listed = await kiln(['images', '--root', root, '--format', 'json']);
    assert.ok(listed.stdout.includes('surface-alias:latest'));
  });

  test('buildInBackground returns at once; getBuildStatus goes from building to ready with the logs, or to error', async (t) => {
    if (!requireIntegration(t)) return;
    const tpl = Template().fromImage('busybox:latest').runCmd(`sleep 1; echo background-${Date.now()}`);
    const info = await Template.buildInBackground(tpl, 'in-background', { root, contextPath: ctx });
    assert.equal((await Template.getBuildStatus(info)).status, 'building');
    let st = await Template.getBuildStatus(info);
    const until = Date.now() + 60_000;
    while (st.status === 'building' && Date.now() < until) {
      await new Promise((r) => setTimeout(r, 200));
      st = await Template.getBuildStatus(info);
    }
    assert.equal(st.status, 'ready', st.reason);
    assert.ok(st.logEntries.some((l) => /background-\d+/.test(l.message)), st.logEntries.map(String).join('\n'));
    assert.ok((await Template.getBuildStatus(info, { logsOffset: st.logEntries.length - 1 })).logEntries.length === 1);
    assert.equal(await Template.exists('in-background', { root }), true);
    const bad = await Template.buildInBackground(Template().fromImage('busybox:latest').runCmd('exit 4'), { root, contextPath: ctx });
    let bs = await Template.getBuildStatus(bad);
    while (bs.status === 'building') {
      await new Promise((r) => setTimeout(r, 200));
      bs = await Template.getBuildStatus(bad);
    }
    assert.equal(bs.status, 'error');
    assert.match(bs.reason ?? '', /exit 4|exit code 4|status 4/);
  });

  test('fromImage(ref, credentials): the credentials are what the pull authenticates with', async (t) => {
    if (!requireIntegration(t) || skipWithoutRegistry(t)) return;
    reg = await startRegistry();
    const pushed = await kiln(['push', '--root', root, 'busybox:latest', `${reg.host}/team/private-base:1`]);
    assert.equal(pushed.code, 0, pushed.stderr);
    const proxy = await startAuthProxy(reg.host);
    try {
      const ref = `${proxy.host}/team/private-base:1`;
      const tpl = (password: string) => Template().fromImage(ref, { username: USER, password }).runCmd('echo private > /p');
      const fresh = mkdtempSync(path.join(tmpdir(), 'kiln-root-'));
      try {
        await assert.rejects(Template.build(tpl('wrong'), { root: fresh, contextPath: ctx }), /401|auth|credentials|denied|unauthor/i);
        const info = await Template.build(tpl(PASS), { root: fresh, contextPath: ctx, name: 'from-private:1' });
        assert.match(info.digest, /^sha256:/);
        assert.ok(proxy.seen.includes(`${USER}:${PASS}`), proxy.seen.join(', '));
      } finally {
        await cleanup(fresh);
      }
    } finally {
      await proxy.stop();
    }
  });
});
