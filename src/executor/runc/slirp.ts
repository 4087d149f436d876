/**
 * The `isolated` network of a run: a network namespace of its own (bind-mounted on a file under the executor's state
 * dir, so it exists before runc starts and runc only joins it) with user-mode egress through Debian's slirp4netns
 * (`--disable-host-loopback`: 10.0.2.2, slirp's door to the host's 127.0.0.1, is unreachable; the namespace's own
 * loopback is its own). DNS goes to slirp's forwarder at 10.0.2.3. slirp4netns gets an exit fd: when kiln dies, the
 * fd closes and slirp4netns exits; the namespace file is unmounted at the end of the run or at the next start.
 * @internal
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { promises as fsp } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { BuildError } from '../../errors/index.js';
import { MNT_DETACH, umount } from '../../sys/index.js';
import { locateRuntime } from './runtime.js';
import type { PortForward } from '../types.js';

const READY_TIMEOUT_MS = 10_000;

/** A live isolated network: the namespace path for runc, and how to tear it down. */
export interface IsolatedNetwork {
  netnsPath: string;
  release(): Promise<void>;
}

/**
 * Create the namespace `<dir>/<id>` and start slirp4netns on it; resolves once slirp4netns says it is ready and every
 * port in `portForwards` is forwarded (through slirp4netns's API socket at `apiSocket`, which they need).
 */
export async function startIsolatedNetwork(opts: { dir: string; id: string; portForwards?: PortForward[]; apiSocket?: string }): Promise<IsolatedNetwork> {
  await fsp.mkdir(opts.dir, { recursive: true, mode: 0o700 });
  const netnsPath = path.join(opts.dir, opts.id);
  await fsp.writeFile(netnsPath, '', { mode: 0o600 });
  let slirp: ChildProcess | undefined;
  const release = async (): Promise<void> => {
    if (slirp && slirp.exitCode === null && slirp.signalCode === null) {
      const gone = new Promise((r) => slirp!.once('close', r));
      slirp.kill('SIGTERM');
      await Promise.race([gone, new Promise((r) => setTimeout(r, 2000))]);
      if (slirp.exitCode === null && slirp.signalCode === null) slirp.kill('SIGKILL');
    }
    await removeNetns(netnsPath);
  };
  try {
    await run(await locateRuntime('unshare'), [`--net=${netnsPath}`, 'true']);
    const bin = await locateRuntime('slirp4netns').catch((err: unknown) => {
      throw new BuildError('ERR_KILN_EXEC_RUNTIME', 'the isolated network needs slirp4netns, which is not installed', { cause: err, hint: 'apt-get install slirp4netns (scripts/setup.sh installs it)' });
    });
    const forwards = opts.portForwards ?? [];
    if (forwards.length > 0 && !opts.apiSocket) throw new Error('startIsolatedNetwork: port forwards need apiSocket');
    // sun_path holds 107 bytes
    if (forwards.length > 0 && Buffer.byteLength(opts.apiSocket!) > 107) {
      throw new BuildError('ERR_KILN_EXEC_START', `cannot publish ports: the socket path ${opts.apiSocket} is longer than a unix socket path may be`, { hint: 'use a state root with a shorter path (--root)' });
    }
    const api = forwards.length > 0 ? [`--api-socket=${opts.apiSocket}`] : [];
    slirp = spawn(bin, ['--configure', '--mtu=65520', '--disable-host-loopback', '--netns-type=path', '--ready-fd=3', '--exit-fd=4', ...api, netnsPath, 'tap0'], {
      stdio: ['ignore', 'ignore', 'pipe', 'pipe', 'pipe'],
    });
    await waitReady(slirp);
    for (const f of forwards) await addHostForward({ socket: opts.apiSocket!, forward: f });
    return { netnsPath, release };
  } catch (err) {
    await release();
    throw err;
  }
}

/** Ask slirp4netns (its API socket: one JSON request per connection) to forward a host port into the namespace. */
async function addHostForward(opts: { socket: string; forward: PortForward }): Promise<void> {
  const f = opts.forward;
  const request = { execute: 'add_hostfwd', arguments: { proto: f.protocol, host_addr: f.hostIp ?? '0.0.0.0', host_port: f.hostPort, guest_port: f.containerPort } };
  const answer = await new Promise<string>((resolve, reject) => {
    const sock = net.connect(opts.socket);
    let text = '';
    sock.setEncoding('utf8');
    sock.on('connect', () => sock.end(JSON.stringify(request)));
    sock.on('data', (c: string) => (text += c));
    sock.on('end', () => resolve(text));
    sock.on('error', reject);
  });
  let parsed: { error?: { desc?: string } } = {};
  try {
    parsed = JSON.parse(answer) as typeof parsed;
  } catch {
    parsed = { error: { desc: answer.trim() || 'no answer' } };
  }
  if (parsed.error) {
    throw new BuildError('ERR_KILN_EXEC_START', `cannot publish port ${f.hostIp ? `${f.hostIp}:` : ''}${f.hostPort} -> ${f.containerPort}/${f.protocol}: ${parsed.error.desc ?? JSON.stringify(parsed.error)}`);
  }
}

/** Unmount and remove namespace files under `dir` whose names `isStale` accepts (runs left by a killed kiln). */
export async function cleanIsolatedNetworks(opts: { dir: string; isStale(name: string): boolean }): Promise<void> {
  for (const name of await fsp.readdir(opts.dir).catch(() => [] as string[])) {
    if (opts.isStale(name)) await removeNetns(path.join(opts.dir, name));
  }
}

async function removeNetns(p: string): Promise<void> {
  try {
    umount(p);
  } catch {
    try {
      umount(p, MNT_DETACH);
    } catch {
      /* not mounted */
    }
  }
  await fsp.rm(p, { force: true }).catch(() => undefined);
}

function waitReady(child: ChildProcess): Promise<void> {
  return new Promise((resolve, reject) => {
    let stderr = '';
    child.stderr?.on('data', (c: Buffer) => (stderr = (stderr + c.toString()).slice(-2000)));
    const ready = child.stdio[3] as NodeJS.ReadableStream | null;
    const timer = setTimeout(() => fail(`slirp4netns was not ready within ${READY_TIMEOUT_MS / 1000} s`), READY_TIMEOUT_MS);
    const fail = (why: string): void => {
      clearTimeout(timer);
      reject(new BuildError('ERR_KILN_EXEC_RUNTIME', `could not set up the isolated network: ${why}${stderr.trim() ? `: ${stderr.trim().split('\n').pop()}` : ''}`));
    };
    ready?.once('data', () => {
      clearTimeout(timer);
      resolve();
    });
    child.once('error', (err) => fail(err.message));
    child.once('exit', (code) => fail(`slirp4netns exited (${code ?? 'signal'})`));
  });
}

function run(cmd: string, args: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    execFile(cmd, args, (err, _stdout, stderr) => (err ? reject(new Error(`${path.basename(cmd)} ${args.join(' ')}: ${stderr.trim() || err.message}`)) : resolve()));
  });
}
