/**
 * Network modes of RUN: the CLI's default (the host's network, Docker's default for local builds) reaches a server on
 * the host's 127.0.0.1; `--network=isolated` (what a service uses) gives each RUN its own namespace with slirp4netns
 * egress and no way to that server, no raw sockets, and refuses `RUN --network=host` unless allowed.
 * Egress to the outside cannot be shown on this closed machine; the namespace's default route through slirp is.
 */
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { networkInterfaces } from 'node:os';
import { build, cleanup, integrationBlocker, newContext, newRoot, requireIntegration } from '../helpers/kiln.js';

describe('RUN network modes', { concurrency: false }, () => {
  let root = '';
  let server: Server | undefined;
  let port = 0;
  const dirs: string[] = [];
  before(async () => {
    if (integrationBlocker()) return;
    root = await newRoot();
    dirs.push(root);
    server = createServer((_req, res) => res.end('hello-from-host-loopback\n'));
    await new Promise<void>((r) => server!.listen(0, '127.0.0.1', r));
    port = (server.address() as AddressInfo).port;
  });
  after(async () => {
    await new Promise((r) => (server ? server.close(r) : r(undefined)));
    if (dirs.length) await cleanup(...dirs);
  });
  const run = async (dockerfile: string, extra: string[] = []): Promise<Awaited<ReturnType<typeof build>>> => {
    const ctx = await newContext({ Dockerfile: dockerfile });
    dirs.push(ctx);
    return build(root, ctx, ['--no-cache', ...extra]);
  };
  // busybox's wget crashes on this machine (also outside a container); nc speaks the request
  const get = (host: string): string => `printf 'GET / HTTP/1.0\\r\\n\\r\\n' | timeout 5 nc ${host} ${port}`;
  const slirpProcesses = (): string[] =>
    readdirSync('/proc')
      .filter((p) => /^\d+$/.test(p))
      .map((p) => {
        try {
          return readFileSync(`/proc/${p}/cmdline`, 'utf8').split('\0').join(' ');
        } catch {
          return '';
        }
      })
      .filter((c) => c.includes('slirp4netns') && c.includes(root));

  test('default (host network): a RUN reaches a server on the host\'s 127.0.0.1', async (t) => {
    if (!requireIntegration(t)) return;
    const r = await run(`FROM busybox\nRUN ${get('127.0.0.1')} | sed s/^/got-/\n`);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout + r.stderr, /got-hello-from-host-loopback/);
  });

  test('isolated: no way to the host\'s loopback (127.0.0.1 nor slirp\'s 10.0.2.2), a slirp default route, no raw sockets', async (t) => {
    if (!requireIntegration(t)) return;
    const r = await run(
      'FROM busybox\n' +
        `RUN if ${get('127.0.0.1')} | grep hello; then echo got-REACHED-LO; else echo got-lo-refused; fi; ` +
        `if ${get('10.0.2.2')} | grep hello; then echo got-REACHED-GW; else echo got-gw-refused; fi; ` +
        `if ${get('10.0.2.100')} | grep hello; then echo got-REACHED-SELF; else echo got-self-refused; fi; ` +
        'grep -q tap0 /proc/net/route && echo got-tap0-route; ' +
        'if ping -c 1 -W 1 127.0.0.1 >/dev/null 2>&1; then echo got-RAW-PING; else echo got-no-raw; fi; ' +
        'cat /etc/resolv.conf | sed s/^/got-/ | tr " " _\n',
      ['--network=isolated'],
    );
    assert.equal(r.code, 0, r.stderr);
    const got: string[] = (r.stdout + r.stderr).match(/got-[^\s]+/g) ?? [];
    for (const want of ['got-lo-refused', 'got-gw-refused', 'got-self-refused', 'got-tap0-route', 'got-no-raw', 'got-nameserver_10.0.2.3']) assert.ok(got.includes(want), `${want}: ${got.join(' ')}`);
    assert.deepEqual(slirpProcesses(), [], 'slirp4netns left running');
    assert.deepEqual(readFileSync('/proc/self/mounts', 'utf8').split('\n').filter((l) => l.includes(`${root}/`) && l.startsWith('nsfs')), [], 'a network namespace is still mounted');
  });

  test('isolated: egress works through slirp (a server on the host\'s non-loopback address answers)', async (t) => {
    if (!requireIntegration(t)) return;
    const addr = Object.values(networkInterfaces()).flat().find((a) => a && a.family === 'IPv4' && !a.internal)?.address;
    if (!addr) {
      // a machine with no non-loopback address: nothing outside the namespace to reach
      t.diagnostic('no non-loopback IPv4 address on this machine');
      return;
    }
    const outside = createServer((_req, res) => res.end('hello-through-slirp\n'));
    await new Promise<void>((r) => outside.listen(0, addr, r));
    try {
      const p = (outside.address() as AddressInfo).port;
      const r = await run(`FROM busybox\nRUN printf 'GET / HTTP/1.0\\r\\n\\r\\n' | timeout 5 nc ${addr} ${p} | sed s/^/got-/\n`, ['--network=isolated']);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout + r.stderr, /got-hello-through-slirp/);
    } finally {
      await new Promise((r) => outside.close(r));
    }
  });

  test('isolated: RUN --network=host is refused unless allowed; --network=none still works', async (t) => {
    if (!requireIntegration(t)) return;
    const df = `FROM busybox\nRUN --network=host ${get('127.0.0.1')} | sed s/^/got-/\n`;
    const refused = await run(df, ['--network=isolated']);
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /Dockerfile:2: RUN --network=host is not allowed: this build runs with the isolated network/);
    const allowed = await run(df, ['--network=isolated', '--allow-host-network']);
    assert.equal(allowed.code, 0, allowed.stderr);
    assert.match(allowed.stdout + allowed.stderr, /got-hello-from-host-loopback/);
    const none = await run('FROM busybox\nRUN --network=none sh -c "grep -q tap0 /proc/net/dev && echo got-TAP || echo got-no-tap"\n', ['--network=isolated']);
    assert.equal(none.code, 0, none.stderr);
    assert.match(none.stdout + none.stderr, /got-no-tap/);
  });
});
