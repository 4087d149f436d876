/**
 * `kiln login` / `kiln logout` as docker's: the credentials are checked against the registry (a loopback proxy that
 * demands Basic auth in front of a real registry), stored in `$DOCKER_CONFIG/config.json` (0600, other keys kept), used
 * by later pulls, and removed again.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { cleanup, integrationBlocker, kiln, kilnBin, newRoot, requireIntegration } from '../helpers/kiln.js';
import { AUTH_PASS, AUTH_USER, skipWithoutRegistry, startAuthProxy, startRegistry, type TestRegistry } from '../helpers/registry.js';

describe('kiln login / logout', { concurrency: false }, () => {
  let root = '';
  let dockerConfig = '';
  let reg: TestRegistry | undefined;

  before(async () => {
    if (integrationBlocker()) return;
    root = await newRoot();
    dockerConfig = mkdtempSync(path.join(tmpdir(), 'kiln-docker-config-'));
  });

  after(async () => {
    await reg?.stop();
    await cleanup(...[root, dockerConfig].filter(Boolean));
  });

  test('checks, stores, is used by pulls, and logs out', async (t) => {
    if (!requireIntegration(t) || skipWithoutRegistry(t)) return;
    reg = await startRegistry();
    assert.equal((await kiln(['push', '--root', root, 'busybox:latest', `${reg.host}/team/locked:1`])).code, 0);
    const proxy = await startAuthProxy(reg.host);
    const env = { DOCKER_CONFIG: dockerConfig };
    const file = path.join(dockerConfig, 'config.json');
    writeFileSync(file, JSON.stringify({ credsStore: '', currentContext: 'default' }));
    try {
      // async: the proxy answers from this process, so a blocking spawnSync would wait on itself
      const login = (password: string): Promise<{ status: number; stdout: string; stderr: string }> =>
        new Promise((resolve) => {
          const p = spawn(kilnBin, ['login', proxy.host, '-u', AUTH_USER, '--password-stdin'], { env: { ...process.env, ...env } });
          let stdout = '';
          let stderr = '';
          p.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
          p.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
          p.on('close', (code) => resolve({ status: code ?? -1, stdout, stderr }));
          p.stdin.end(`${password}\n`);
        });
      const bad = await login('wrong');
      assert.equal(bad.status, 1);
      assert.match(bad.stderr, /login to 127\.0\.0\.1:\d+ failed: the registry refused these credentials/);
      assert.equal(JSON.parse(readFileSync(file, 'utf8')).auths, undefined, 'nothing stored for a failed login');
      const ok = await login(AUTH_PASS);
      assert.equal(ok.status, 0, ok.stderr);
      assert.equal(ok.stdout, 'Login Succeeded\n');
      const cfg = JSON.parse(readFileSync(file, 'utf8')) as { currentContext: string; auths: Record<string, { auth: string }> };
      assert.equal(cfg.currentContext, 'default', 'other keys are kept');
      assert.equal(Buffer.from(cfg.auths[proxy.host]!.auth, 'base64').toString(), `${AUTH_USER}:${AUTH_PASS}`);
      assert.equal(statSync(file).mode & 0o777, 0o600);
      // a pull with no --registry-auth uses the stored login
      const fresh = await newRoot();
      try {
        const pulled = await kiln(['pull', '--root', fresh, `${proxy.host}/team/locked:1`], { env });
        assert.equal(pulled.code, 0, pulled.stderr);
        const out = await kiln(['logout', proxy.host], { env });
        assert.equal(out.stdout, `Removing login credentials for ${proxy.host}\n`);
        assert.deepEqual(JSON.parse(readFileSync(file, 'utf8')).auths, {});
        const again = await kiln(['pull', '--root', fresh, `${proxy.host}/team/locked:2`], { env });
        assert.notEqual(again.code, 0);
        assert.equal((await kiln(['logout', proxy.host], { env })).stdout, `Not logged in to ${proxy.host}\n`);
      } finally {
        await cleanup(fresh);
      }
    } finally {
      await proxy.stop();
    }
  });
});
