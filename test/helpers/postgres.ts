/**
 * Test helper: a real PostgreSQL 15 server (Debian's `postgresql` package) per test, with its own data directory under
 * a temp dir, listening only on a unix socket in that dir (listen_addresses='') and a free port number (which names the
 * socket). The data directory is a copy of one initdb per test process. PostgreSQL refuses to run as root, so initdb and the server run as the `postgres` user; the temp dir is
 * chmod 755 so that user can reach it.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdirSync, mkdtempSync, promises as fsp, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir, userInfo } from 'node:os';
import path from 'node:path';
import type { TestContext } from 'node:test';
import { promisify } from 'node:util';
import { stopIfMissing } from './missing.js';

const run = promisify(execFile);

export const PG_BIN = '/usr/lib/postgresql/15/bin';
const PG_USER = 'postgres';

export interface TestPostgres {
  /** the unix socket directory (`host=` for libpq / pg) */
  socketDir: string;
  port: number;
  /** `postgres://postgres@/postgres?host=SOCKDIR&port=PORT` — the superuser's database, trust auth */
  url: string;
  /** the URL of another database on this server */
  urlFor(database: string): string;
  /** create a database (for tests that want several), returns its URL */
  createDatabase(name: string): Promise<string>;
  stop(): Promise<void>;
}

export function postgresInstalled(): boolean {
  return existsSync(path.join(PG_BIN, 'postgres')) && existsSync(path.join(PG_BIN, 'initdb'));
}

/**
 * True when a test must stop here because PostgreSQL is missing: skipped with the reason on a laptop, a failure under
 * CI (where nothing may skip).
 */
export function skipWithoutPostgres(t: TestContext): boolean {
  if (postgresInstalled() && userInfo().uid === 0) return false;
  return stopIfMissing(t, postgresInstalled() ? 'the PostgreSQL tests run as root (they start the server as the postgres user)' : `PostgreSQL 15 is not installed (${PG_BIN}; apt package postgresql)`);
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as { port: number }).port;
      srv.close(() => resolve(port));
    });
  });
}

async function pgUid(): Promise<{ uid: number; gid: number }> {
  const uid = Number((await run('id', ['-u', PG_USER])).stdout.trim());
  const gid = Number((await run('id', ['-g', PG_USER])).stdout.trim());
  return { uid, gid };
}

function urlOf(socketDir: string, port: number, database: string): string {
  return `postgres://${PG_USER}@/${encodeURIComponent(database)}?host=${encodeURIComponent(socketDir)}&port=${port}`;
}

let template: Promise<string> | undefined;

/**
 * initdb once per test process into a template data directory (removed when the process exits); each server starts
 * from a copy, which is several times faster than initdb on a loaded machine.
 */
function templateDataDir(): Promise<string> {
  template ??= (async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'kiln-pg-template-'));
    process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
    chmodSync(dir, 0o755);
    const data = path.join(dir, 'data');
    const { uid, gid } = await pgUid();
    mkdirSync(data, { mode: 0o700 });
    chownSync(data, uid, gid);
    await run(path.join(PG_BIN, 'initdb'), ['-D', data, '-A', 'trust', '-U', PG_USER, '--no-sync', '-E', 'UTF8', '--locale=C'], { cwd: dir, uid, gid });
    return data;
  })();
  template.catch(() => (template = undefined));
  return template;
}

/**
 * Start a server and wait until `pg_isready` says it accepts connections. When `t` is given, the server is stopped
 * and its directory removed when the test ends, pass or fail.
 */
export async function startPostgres(t?: TestContext): Promise<TestPostgres> {
  const dir = mkdtempSync(path.join(tmpdir(), 'kiln-pg-'));
  chmodSync(dir, 0o755);
  const data = path.join(dir, 'data');
  const socketDir = path.join(dir, 'sock');
  const { uid, gid } = await pgUid();
  mkdirSync(socketDir, { mode: 0o755 });
  chownSync(socketDir, uid, gid);
  let proc: ChildProcess | undefined;
  const stop = async (): Promise<void> => {
    if (proc && proc.exitCode === null && proc.signalCode === null) {
      const done = new Promise((r) => proc!.once('exit', r));
      proc.kill('SIGINT'); // "fast shutdown": roll back open transactions, disconnect clients, exit
      const timer = setTimeout(() => proc!.kill('SIGKILL'), 10_000);
      await done;
      clearTimeout(timer);
    }
    await fsp.rm(dir, { recursive: true, force: true });
  };
  try {
    // a copy of the per-process template (cp -a keeps the postgres user's ownership and the 0700 mode)
    await run('cp', ['-a', await templateDataDir(), data]);
    const port = await freePort();
    // started as the postgres user directly (not through runuser), so the stop signal reaches the postmaster
    proc = spawn(path.join(PG_BIN, 'postgres'), [
      '-D', data, '-k', socketDir, '-p', String(port),
      '-c', "listen_addresses=",
      '-c', 'fsync=off', '-c', 'synchronous_commit=off', '-c', 'full_page_writes=off',
      '-c', 'max_connections=100', '-c', 'shared_buffers=16MB',
    ], { cwd: dir, uid, gid, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    proc.stderr?.on('data', (c: Buffer) => (stderr += c.toString()));
    const deadline = Date.now() + 30_000;
    for (;;) {
      const ready = await run(path.join(PG_BIN, 'pg_isready'), ['-q', '-h', socketDir, '-p', String(port)]).then(() => true, () => false);
      if (ready) break;
      if (proc.exitCode !== null || Date.now() > deadline) throw new Error(`PostgreSQL did not start: ${stderr}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    const server: TestPostgres = {
      socketDir,
      port,
      url: urlOf(socketDir, port, PG_USER),
      urlFor: (database) => urlOf(socketDir, port, database),
      async createDatabase(name) {
        await run(path.join(PG_BIN, 'createdb'), ['-h', socketDir, '-p', String(port), '-U', PG_USER, name], { cwd: dir });
        return urlOf(socketDir, port, name);
      },
      stop,
    };
    t?.after(stop);
    return server;
  } catch (err) {
    await stop();
    throw err;
  }
}
