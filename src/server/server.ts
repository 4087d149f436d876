import { createAdaptorServer, type HttpBindings } from '@hono/node-server';
import { chmodSync, existsSync, rmSync } from 'node:fs';
import type { Server } from 'node:http';
import { connect } from 'node:net';
import path from 'node:path';
import type { Hono } from 'hono';
import { BuildError } from '../errors/index.js';
import { openState, type State } from '../engine/index.js';
import { ServiceDb } from '../service/index.js';
import { createApp } from './app.js';
import { BuildService } from './builds.js';
import { parseListen, type ServerConfig } from './config.js';
import { createLocalApp } from './local.js';
import { createMetrics } from './metrics.js';
import { TeamSpaces } from './teams.js';

/** A running `kiln serve`. */
export interface RunningServer {
  /** where the API listens: `http://HOST:PORT` or `unix:/path` */
  url: string;
  /** SIGTERM behaviour: stop accepting, let builds finish within the timeout (then cancel them), close the store */
  close(): Promise<void>;
}

/** One JSON line per request and per build, on stdout. */
function jsonLog(line: Record<string, unknown>): void {
  process.stdout.write(`${JSON.stringify({ time: new Date().toISOString(), ...line })}\n`);
}

function listen(app: Hono<{ Bindings: HttpBindings }> | { fetch: Hono<{ Bindings: HttpBindings }>['fetch'] }, where: { host: string; port: number } | { socket: string }): Promise<{ server: Server; url: string }> {
  const server = createAdaptorServer({ fetch: app.fetch }) as Server;
  server.keepAliveTimeout = 65_000;
  return new Promise((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) =>
      reject(new BuildError('ERR_KILN_ARGUMENT', `cannot listen on ${'socket' in where ? where.socket : `${where.host}:${where.port}`}: ${err.code ?? err.message}`)));
    if ('socket' in where) {
      void socketInUse(where.socket).then((live) => {
        if (live) return reject(new BuildError('ERR_KILN_ARGUMENT', `another kiln serve is listening on ${where.socket}`, { hint: 'stop it first, or give this one another --root / --listen' }));
        if (existsSync(where.socket)) rmSync(where.socket, { force: true }); // a socket left by a killed server
        server.listen(where.socket, () => {
          chmodSync(where.socket, 0o600);
          resolve({ server, url: `unix:${where.socket}` });
        });
      });
    } else {
      server.listen(where.port, where.host, () => {
        const a = server.address();
        const port = typeof a === 'object' && a ? a.port : where.port;
        resolve({ server, url: `http://${where.host.includes(':') ? `[${where.host}]` : where.host}:${port}` });
      });
    }
  });
}

/** Does a live server answer on this socket path (rather than a file left by a killed one)? */
function socketInUse(socket: string): Promise<boolean> {
  if (!existsSync(socket)) return Promise.resolve(false);
  return new Promise((resolve) => {
    const c = connect(socket);
    c.once('connect', () => {
      c.destroy();
      resolve(true);
    });
    c.once('error', () => resolve(false));
  });
}

/** Start `kiln serve`: open the state root (kept warm), recover the build queue, listen. */
export async function startServer(config: ServerConfig, opts: { version: string; log?: (l: Record<string, unknown>) => void } = { version: 'unknown' }): Promise<RunningServer> {
  const log = opts.log ?? jsonLog;
  const base: State = await openState({ root: config.root });
  const db = new ServiceDb(path.join(config.root, 'service.db'));
  const metrics = createMetrics();
  const spaces = new TeamSpaces(config, base);
  const builds = new BuildService({ config, db, spaces, metrics, base, log });
  const app = createApp({ db, spaces, builds, metrics, version: opts.version, log });
  await builds.recover();
  const servers: Server[] = [];
  let url: string;
  try {
    const main = await listen(app as never, parseListen(config.listen));
    servers.push(main.server);
    url = main.url;
    if (config.localSocket) {
      const local = await listen(createLocalApp({ config, state: base, queue: builds.queue, log }), { socket: config.localSocket });
      servers.push(local.server);
    }
  } catch (err) {
    for (const s of servers) s.close();
    db.close();
    base.close();
    throw err;
  }
  log({ msg: 'listening', url, localSocket: config.localSocket, root: config.root, maxBuilds: config.maxBuilds });
  let closing: Promise<void> | undefined;
  return {
    url,
    close: () =>
      (closing ??= (async () => {
        const stopped = Promise.all(servers.map((s) => new Promise<void>((r) => s.close(() => r()))));
        await builds.shutdown(config.shutdownTimeoutMs);
        for (const s of servers) (s as Server & { closeAllConnections?: () => void }).closeAllConnections?.();
        await stopped;
        if (config.localSocket) rmSync(config.localSocket, { force: true });
        await spaces.closeAll();
        db.close();
        base.close();
        log({ msg: 'stopped' });
      })()),
  };
}
