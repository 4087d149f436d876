/**
 * Test helper: a PRIVATE dockerd (Debian's docker.io) under a temp dir: its own data root, exec root, pid file and
 * unix socket, no bridge and no iptables changes, so it touches nothing on the host. Tests talk to it with
 * `docker -H unix://SOCK` ({@link TestDockerd.docker}). The host's own docker services stay disabled (scripts/setup.sh).
 */
import { spawn, spawnSync, type ChildProcess, type SpawnSyncReturns } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, openSync, promises as fsp, readFileSync } from 'node:fs';
import path from 'node:path';
import type { TestContext } from 'node:test';
import { stopIfMissing } from './missing.js';

export const DOCKERD_BIN = '/usr/sbin/dockerd';

export interface TestDockerd {
  /** `unix:///tmp/kiln-dockerd-XXXX/docker.sock` */
  host: string;
  /** run the docker client against this daemon */
  docker(args: string[]): SpawnSyncReturns<string>;
  stop(): Promise<void>;
}

function dockerClient(): string {
  for (const p of ['/usr/bin/docker', '/usr/local/bin/docker']) if (existsSync(p)) return p;
  return 'docker';
}

function startWith(dir: string, driver: string): { proc: ChildProcess; sock: string; log: string } {
  const sock = path.join(dir, 'docker.sock');
  const log = path.join(dir, `dockerd-${driver}.log`);
  const args = [
    '--data-root', path.join(dir, 'data'), '--exec-root', path.join(dir, 'exec'), '--pidfile', path.join(dir, 'dockerd.pid'),
    '-H', `unix://${sock}`, '--bridge=none', '--iptables=false', '--ip-masq=false', '--storage-driver', driver,
    // its own containerd namespaces, so nothing mixes with a containerd the host might run
    '--containerd-namespace', 'kiln-test', '--containerd-plugins-namespace', 'kiln-test-plugins',
  ];
  const fd = openSync(log, 'a');
  const proc = spawn(DOCKERD_BIN, args, { stdio: ['ignore', fd, fd] });
  return { proc, sock, log };
}

async function stopProc(proc: ChildProcess): Promise<void> {
  if (proc.exitCode !== null || proc.signalCode !== null) return;
  const done = new Promise((r) => proc.once('exit', r));
  proc.kill('SIGTERM');
  const timer = setTimeout(() => proc.kill('SIGKILL'), 15_000);
  await done;
  clearTimeout(timer);
}

async function waitUp(d: { proc: ChildProcess; sock: string }, client: string): Promise<boolean> {
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline && d.proc.exitCode === null) {
    if (existsSync(d.sock) && spawnSync(client, ['-H', `unix://${d.sock}`, 'version'], { encoding: 'utf8' }).status === 0) return true;
    await new Promise((r) => setTimeout(r, 200));
  }
  return false;
}

/** Start a private dockerd (overlay2 if it works here, else vfs) and wait until it answers `docker version`. */
export async function startDockerd(): Promise<TestDockerd> {
  const dir = mkdtempSync('/tmp/kiln-dockerd-'); // short: unix socket paths are limited to 108 bytes
  const client = dockerClient();
  let logs = '';
  for (const driver of ['overlay2', 'vfs']) {
    mkdirSync(path.join(dir, 'data'), { recursive: true });
    const d = startWith(dir, driver);
    if (await waitUp(d, client)) {
      const host = `unix://${d.sock}`;
      return {
        host,
        docker: (args) => spawnSync(client, ['-H', host, ...args], { encoding: 'utf8' }),
        async stop() {
          await stopProc(d.proc);
          await fsp.rm(dir, { recursive: true, force: true });
        },
      };
    }
    await stopProc(d.proc);
    logs += `--- ${driver}:\n${readFileSync(d.log, 'utf8').slice(-2000)}\n`;
    await fsp.rm(path.join(dir, 'data'), { recursive: true, force: true });
    await fsp.rm(path.join(dir, 'exec'), { recursive: true, force: true });
  }
  await fsp.rm(dir, { recursive: true, force: true });
  throw new Error(`dockerd did not start:\n${logs}`);
}

export function dockerdInstalled(): boolean {
  return existsSync(DOCKERD_BIN);
}

/** True when the test must stop because docker.io is missing: a skip on a laptop, a failure under CI. */
export function skipWithoutDockerd(t: TestContext): boolean {
  return stopIfMissing(t, dockerdInstalled() ? undefined : 'docker.io (dockerd) is not installed: run scripts/setup.sh');
}
