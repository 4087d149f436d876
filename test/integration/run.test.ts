/** `kiln run` and `kiln volume`: containers from local images with no daemon, named volumes that persist. */
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { cleanup, integrationBlocker, kilnSync, newRoot, requireIntegration, spawnKiln } from '../helpers/kiln.js';

describe('kiln run', { concurrency: false }, () => {
  let root = '';
  before(async () => {
    if (integrationBlocker()) return;
    root = await newRoot();
  });
  after(async () => {
    if (root) await cleanup(root);
  });
  const run = (...args: string[]): ReturnType<typeof kilnSync> => kilnSync(['run', '--root', root, ...args]);

  test('-v pkgs:/cache twice: the second run finds what the first cached', (t) => {
    if (!requireIntegration(t)) return;
    const first = run('-v', 'pkgs:/cache', 'busybox', 'sh', '-c', 'mkdir -p /cache/pip && echo wheel-bytes > /cache/pip/pkg.whl && echo stored');
    assert.equal(first.code, 0, first.stderr);
    assert.equal(first.stdout, 'stored\n');
    const second = run('-v', 'pkgs:/cache', '--rm', 'busybox', 'cat', '/cache/pip/pkg.whl');
    assert.equal(second.code, 0, second.stderr);
    assert.equal(second.stdout, 'wheel-bytes\n');
    const ls = kilnSync(['volume', 'ls', '--root', root, '-q']);
    assert.equal(ls.stdout, 'pkgs\n');
    const du = JSON.parse(kilnSync(['volume', 'du', '--root', root, '--format', 'json']).stdout) as Array<{ name: string; size: number }>;
    assert.ok(du[0]!.size > 0);
    const [info] = JSON.parse(kilnSync(['volume', 'inspect', '--root', root, 'pkgs']).stdout) as Array<{ mountpoint: string }>;
    assert.equal(info!.mountpoint, path.join(root, 'volumes', 'pkgs', '_data'));
    assert.ok(existsSync(path.join(info!.mountpoint, 'pip', 'pkg.whl')));
  });

  test('exit code, -e, -w, -u, --network none; the container\'s own writes are discarded', (t) => {
    if (!requireIntegration(t)) return;
    const r = run('-e', 'GREETING=hi', '-w', '/tmp', '-u', '1000:1000', 'busybox', 'sh', '-c', 'echo "$GREETING $(pwd) $(id -u):$(id -g)"; touch /tmp/left; exit 7');
    assert.equal(r.code, 7, r.stderr);
    assert.equal(r.stdout, 'hi /tmp 1000:1000\n');
    const after = run('busybox', 'sh', '-c', 'ls /tmp/left 2>/dev/null || echo gone');
    assert.equal(after.stdout, 'gone\n');
    const net = run('--network', 'none', 'busybox', 'ls', '/sys/class/net');
    assert.equal(net.stdout, 'lo\n');
    const missing = run('no-such-image:1', 'true');
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /not in the local store/);
  });

  test('volume create/rm; a volume in use is not removed', async (t) => {
    if (!requireIntegration(t)) return;
    assert.equal(kilnSync(['volume', 'create', '--root', root, 'busy']).code, 0);
    assert.match(kilnSync(['volume', 'create', '--root', root, 'busy']).stderr, /already exists/);
    const p = spawnKiln(['run', '--root', root, '-v', 'busy:/data', 'busybox', 'sleep', '3']);
    const users = path.join(root, 'volumes', 'busy', 'users');
    const deadline = Date.now() + 20_000;
    while ((!existsSync(users) || readdirSync(users).length === 0) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    const refused = kilnSync(['volume', 'rm', '--root', root, 'busy']);
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /in use/);
    await new Promise((r) => p.on('close', r));
    const rm = kilnSync(['volume', 'rm', '--root', root, 'busy']);
    assert.equal(rm.code, 0, rm.stderr);
    assert.equal(existsSync(path.join(root, 'volumes', 'busy')), false);
  });
});
