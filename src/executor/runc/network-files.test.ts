import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { writeNetworkFiles } from './network-files.js';

async function withDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(path.join(tmpdir(), 'kiln-netfiles-'));
  try {
    await fn(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

const hostFile = (p: string) => (existsSync(p) ? readFileSync(p, 'utf8') : '');

test('host network: copies of the host files, plus the hostname', async () => {
  await withDir(async (dir) => {
    const f = await writeNetworkFiles({ dir, network: 'host', hostname: 'kiln-test-host' });
    assert.equal(path.dirname(f.hosts), dir);
    assert.equal(await readFile(f.resolvConf, 'utf8'), hostFile('/etc/resolv.conf'));
    const hosts = await readFile(f.hosts, 'utf8');
    assert.ok(hosts.startsWith(hostFile('/etc/hosts')));
    assert.match(hosts, /\n127\.0\.0\.1\tkiln-test-host\n$/);
  });
});

test('none network: localhost only; a hostname already listed is not added twice', async () => {
  await withDir(async (dir) => {
    const f = await writeNetworkFiles({ dir, network: 'none', hostname: 'localhost' });
    assert.equal(await readFile(f.hosts, 'utf8'), '127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n');
    const g = await writeNetworkFiles({ dir, network: 'none', hostname: 'box' });
    assert.match(await readFile(g.hosts, 'utf8'), /^127\.0\.0\.1\tlocalhost\n.*\n127\.0\.0\.1\tbox\n$/s);
  });
});

test('isolated network: DNS through slirp4netns (10.0.2.3), never the host\'s resolver; hosts knows localhost only', async () => {
  await withDir(async (dir) => {
    const f = await writeNetworkFiles({ dir, network: 'isolated', hostname: 'box' });
    assert.equal(await readFile(f.resolvConf, 'utf8'), 'nameserver 10.0.2.3\n');
    assert.match(await readFile(f.hosts, 'utf8'), /^127\.0\.0\.1\tlocalhost\n.*\n127\.0\.0\.1\tbox\n$/s);
  });
});
