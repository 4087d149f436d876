import { chmod, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { ExecNetwork } from '../types.js';
import { isMissing } from './rootfs-path.js';

/** Host files bind-mounted at /etc/resolv.conf and /etc/hosts. */
export interface NetworkFiles {
  resolvConf: string;
  hosts: string;
}

const SLIRP_RESOLV = 'nameserver 10.0.2.3\n';
const LOCAL_HOSTS = '127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n';

/**
 * Write per-run copies of resolv.conf and hosts into `dir`. The container gets copies, never the host's own files,
 * so a process that edits them changes neither the host nor the layer. With `host` network the host's files are
 * copied; with `none` the hosts file only knows localhost. The hostname always resolves to 127.0.0.1.
 */
export async function writeNetworkFiles(opts: { dir: string; network: ExecNetwork; hostname: string; extraHosts?: Array<{ host: string; ip: string }> }): Promise<NetworkFiles> {
  const resolvConf = path.join(opts.dir, 'resolv.conf');
  const hosts = path.join(opts.dir, 'hosts');
  // isolated: slirp4netns forwards DNS from 10.0.2.3 (the host's own resolver may sit on its loopback)
  const hostResolv = opts.network === 'isolated' ? SLIRP_RESOLV : ((await readHostFile('/etc/resolv.conf')) ?? '');
  const baseHosts = opts.network === 'host' ? (await readHostFile('/etc/hosts')) ?? LOCAL_HOSTS : LOCAL_HOSTS;
  await writeFile(resolvConf, hostResolv, { mode: 0o644 });
  const extra = (opts.extraHosts ?? []).map((h) => `${h.ip}\t${h.host}\n`).join('');
  await writeFile(hosts, `${withHostname(baseHosts, opts.hostname)}${extra}`, { mode: 0o644 });
  // Readable by every container user whatever kiln's umask.
  await Promise.all([chmod(resolvConf, 0o644), chmod(hosts, 0o644)]);
  return { resolvConf, hosts };
}

function withHostname(hosts: string, hostname: string): string {
  const known = hosts.split('\n').some((line) => line.replace(/#.*/, '').trim().split(/\s+/).slice(1).includes(hostname));
  if (known) return hosts;
  return `${hosts}${hosts === '' || hosts.endsWith('\n') ? '' : '\n'}127.0.0.1\t${hostname}\n`;
}

async function readHostFile(p: string): Promise<string | undefined> {
  try {
    return await readFile(p, 'utf8');
  } catch (err) {
    if (isMissing(err)) return undefined;
    throw err;
  }
}
