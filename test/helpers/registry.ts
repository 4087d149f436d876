/** Test helper: a real `docker-registry` (Debian's distribution 2.x) on a free loopback port, storage in a temp dir. */
import { createServer as createHttpServer, request, type Server } from 'node:http';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, promises as fsp, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { TestContext } from 'node:test';
import { stopIfMissing } from './missing.js';

export const REGISTRY_BIN = '/usr/bin/docker-registry';

export interface TestRegistry {
  /** `127.0.0.1:PORT` */
  host: string;
  /** the registry's storage root (blobs under docker/registry/v2/blobs/sha256/<2>/<hex>/data) */
  storage: string;
  stop(): Promise<void>;
}

/** A TCP port on 127.0.0.1 that was free a moment ago. */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as { port: number }).port;
      srv.close(() => resolve(port));
    });
  });
}

/** Start a registry and wait until `/v2/` answers. */
export async function startRegistry(): Promise<TestRegistry> {
  const dir = mkdtempSync(path.join(tmpdir(), 'kiln-registry-'));
  const storage = path.join(dir, 'storage');
  const port = await freePort();
  const config = path.join(dir, 'config.yml');
  writeFileSync(config, [
    'version: 0.1',
    'log:',
    '  level: error',
    '  accesslog:',
    '    disabled: true',
    'storage:',
    '  filesystem:',
    `    rootdirectory: ${storage}`,
    '  delete:',
    '    enabled: true',
    'http:',
    `  addr: 127.0.0.1:${port}`,
    '',
  ].join('\n'));
  const proc: ChildProcess = spawn(REGISTRY_BIN, ['serve', config], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  proc.stderr?.on('data', (c: Buffer) => (stderr += c.toString()));
  const host = `127.0.0.1:${port}`;
  const deadline = Date.now() + 15_000;
  for (;;) {
    try {
      const r = await fetch(`http://${host}/v2/`);
      if (r.ok) break;
    } catch {
      /* not up yet */
    }
    if (proc.exitCode !== null || Date.now() > deadline) {
      proc.kill('SIGKILL');
      throw new Error(`docker-registry did not start: ${stderr}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    host,
    storage,
    async stop() {
      if (proc.exitCode === null) {
        const done = new Promise((r) => proc.once('exit', r));
        proc.kill('SIGTERM');
        await done;
      }
      await fsp.rm(dir, { recursive: true, force: true });
    },
  };
}

/** Path of a blob's file in the registry's storage. */
export function registryBlobFile(reg: TestRegistry, digest: string): string {
  const hex = digest.replace(/^sha256:/, '');
  return path.join(reg.storage, 'docker', 'registry', 'v2', 'blobs', 'sha256', hex.slice(0, 2), hex, 'data');
}

export function registryInstalled(): boolean {
  return existsSync(REGISTRY_BIN);
}

/**
 * True when a test must stop here because docker-registry is missing: skipped with the reason on a laptop, a failure
 * under CI (where nothing may skip).
 */
export function skipWithoutRegistry(t: TestContext): boolean {
  return stopIfMissing(t, registryInstalled() ? undefined : 'docker-registry is not installed');
}

/** The credentials {@link startAuthProxy} accepts. */
export const AUTH_USER = 'kiln-user';
export const AUTH_PASS = 'kiln-pass-1';

/** A proxy to the registry that answers 401 (Basic challenge) unless the request carries USER:PASS. */
export async function startAuthProxy(upstream: string): Promise<{ host: string; seen: string[]; stop(): Promise<void> }> {
  const seen: string[] = [];
  const expected = `Basic ${Buffer.from(`${AUTH_USER}:${AUTH_PASS}`).toString('base64')}`;
  const [uhost, uport] = upstream.split(':');
  const srv: Server = createHttpServer((req, res) => {
    const auth = req.headers.authorization ?? '';
    seen.push(auth.startsWith('Basic ') ? Buffer.from(auth.slice(6), 'base64').toString() : auth ? 'other' : 'none');
    if (auth !== expected) {
      res.writeHead(401, { 'WWW-Authenticate': 'Basic realm="kiln-test"', 'Content-Type': 'application/json' });
      res.end('{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}');
      return;
    }
    const { authorization: _a, ...headers } = req.headers;
    const up = request({ host: uhost, port: Number(uport), method: req.method, path: req.url, headers: { ...headers, host: upstream } }, (ur) => {
      res.writeHead(ur.statusCode ?? 502, ur.headers);
      ur.pipe(res);
    });
    up.on('error', () => res.destroy());
    req.pipe(up);
  });
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
  const port = (srv.address() as { port: number }).port;
  return { host: `127.0.0.1:${port}`, seen, stop: () => new Promise((resolve) => srv.close(() => resolve())) };
}
