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
import path from 'node:path';
import { BuildError } from '../../errors/index.js';
import { locateRuntime } from './runtime.js';

const READY_TIMEOUT_MS = 10_000;

/** A live isolated network: the namespace path for runc, and how to tear it down. */
export interface IsolatedNetwork {
  netnsPath: string;
  release(): Promise<void>;
}

/** Create the namespace `<dir>/<id>` and start slirp4netns on it; resolves once slirp4netns says it is ready. */
export async function startIsolatedNetwork(opts: { dir: string; id: string }): Promise<IsolatedNetwork> {
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
    slirp = spawn(bin, ['--configure', '--mtu=65520', '--disable-host-loopback', '--netns-type=path', '--ready-fd=3', '--exit-fd=4', netnsPath, 'tap0'], {
      stdio: ['ignore', 'ignore', 'pipe', 'pipe', 'pipe'],
    });
    await waitReady(slirp);
    return { netnsPath, release };
  } catch (err) {
    await release();
    throw err;
  }
}

/** Unmount and remove namespace files under `dir` whose names `isStale` accepts (runs left by a killed kiln). */
export async function cleanIsolatedNetworks(opts: { dir: string; isStale(name: string): boolean }): Promise<void> {
  for (const name of await fsp.readdir(opts.dir).catch(() => [] as string[])) {
    if (opts.isStale(name)) await removeNetns(path.join(opts.dir, name));
  }
}

async function removeNetns(p: string): Promise<void> {
  await run('umount', [p]).catch(() => run('umount', ['-l', p]).catch(() => undefined));
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
