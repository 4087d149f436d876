import { createAdaptorServer, type HttpBindings } from '@hono/node-server';
import { chmodSync, existsSync, rmSync } from 'node:fs';
import type { Server } from 'node:http';
import { connect } from 'node:net';
import path from 'node:path';
import type { Hono } from 'hono';
import { BuildError } from '../errors/index.js';
import { openState, type State } from '../engine/index.js';
import { createContextWatch, type ResolvedSources } from '../context/index.js';
import { trace } from '../progress/index.js';
import { Hono as PlainHono } from 'hono';
import { migratePg, openPg } from '../pg/index.js';
import { createPgBuildQueue, type BuildQueue as SharedQueue, type QueueWorker } from '../queue/index.js';
import { PgServiceStore, SqliteServiceStore, type ServiceStore } from '../service/index.js';
import { createApp } from './app.js';
import { BuildService } from './builds.js';
import { parseListen, type ServerConfig } from './config.js';
import { createLocalApp } from './local.js';
import { createMetrics } from './metrics.js';
import { TeamSpaces } from './teams.js';
import { startBuildWorker } from './worker.js';

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

interface Opened {
  store: ServiceStore;
  shared?: SharedQueue;
  /** close the queue, then the store (and its pool) */
  close(): Promise<void>;
}

/** The records (and, with a database, the shared queue on the same pool). */
async function openRecords(config: ServerConfig): Promise<Opened> {
  if (!config.database) {
    const store = new SqliteServiceStore(path.join(config.root, 'service.db'));
    return { store, close: () => store.close() };
  }
  const db = await openPg({ database: config.database, max: 4 + config.workers * 2, applicationName: config.workerOnly ? 'kiln serve --worker' : 'kiln serve' });
  try {
    await migratePg(db);
    const shared = await createPgBuildQueue({ db, defaultTeamLimit: config.teamDefaults.concurrentBuilds });
    const store = new PgServiceStore(db);
    return { store, shared, close: async () => { await shared.close(); await store.close(); } };
  } catch (err) {
    await db.close();
    throw err;
  }
}

/** A worker-only node's HTTP side: `/health` (with what it runs), nothing else. */
function healthApp(version: string, worker: () => QueueWorker | undefined): Hono<{ Bindings: HttpBindings }> {
  const app = new PlainHono<{ Bindings: HttpBindings }>();
  app.get('/health', (c) => c.json({ status: 'ok', version, role: 'worker', running: worker()?.running().length ?? 0 }));
  app.notFound((c) => c.json({ error: { code: 'ERR_KILN_SERVICE_NOT_FOUND', message: 'a kiln worker serves only /health' } }, 404));
  return app;
}

/**
 * Start `kiln serve`: open the state root (kept warm) and the records, then, as configured: the API (unless
 * `--worker`), builds run in this process (no database), or queue worker slots (`--database`, `--workers N`,
 * `--worker --slots N`); listen.
 */
export async function startServer(config: ServerConfig, opts: { version: string; log?: (l: Record<string, unknown>) => void } = { version: 'unknown' }): Promise<RunningServer> {
  const log = opts.log ?? jsonLog;
  const base: State = await openState({ root: config.root });
  let records: Opened;
  try {
    records = await openRecords(config);
  } catch (err) {
    base.close();
    throw err;
  }
  const { store, shared } = records;
  const metrics = createMetrics();
  const spaces = new TeamSpaces(config, base);
  const builds = new BuildService({ config, store, spaces, metrics, log, ...(shared ? { shared } : {}) });
  const servers: Server[] = [];
  let worker: QueueWorker | undefined;
  let url: string;
  // local hand-offs build contexts on this machine: their trees are watched, so an unchanged one is not walked again
  const contextWatch = createContextWatch<ResolvedSources>({
    cookieDir: path.join(config.root, 'tmp', `watch-${process.pid}`),
    onDrop: (root, reason) => trace(`context watch: ${root} dropped (${reason}); it is walked`),
  });
  try {
    await builds.recover();
    if (shared && config.workers > 0) worker = await startBuildWorker({ config, store, spaces, queue: shared, metrics, log, slots: config.workers });
    const app = config.workerOnly ? healthApp(opts.version, () => worker) : createApp({ store, spaces, builds, metrics, version: opts.version, log, cacheSource: config.database && config.cacheRegistry ? 'registry' : 'local' });
    const main = await listen(app as never, parseListen(config.listen));
    servers.push(main.server);
    url = main.url;
    if (config.localSocket && !config.workerOnly) {
      const local = await listen(createLocalApp({ config, state: base, queue: builds.queue, log, contextWatch }), { socket: config.localSocket });
      servers.push(local.server);
    }
  } catch (err) {
    contextWatch.close();
    for (const s of servers) s.close();
    await worker?.stop({ wait: false }).catch(() => undefined);
    await records.close();
    base.close();
    throw err;
  }
  log({
    msg: 'listening', url, localSocket: config.workerOnly ? null : config.localSocket, root: config.root, maxBuilds: config.maxBuilds,
    store: store.kind, role: config.workerOnly ? 'worker' : shared ? (config.workers > 0 ? 'api+worker' : 'api') : 'single', workers: worker ? config.workers : 0,
  });
  let closing: Promise<void> | undefined;
  return {
    url,
    close: () =>
      (closing ??= (async () => {
        const stopped = Promise.all(servers.map((s) => new Promise<void>((r) => s.close(() => r()))));
        await builds.shutdown(config.shutdownTimeoutMs);
        if (worker) await stopWorker(worker, config.shutdownTimeoutMs);
        for (const s of servers) (s as Server & { closeAllConnections?: () => void }).closeAllConnections?.();
        await stopped;
        contextWatch.close();
        if (config.localSocket && !config.workerOnly) rmSync(config.localSocket, { force: true });
        await spaces.closeAll();
        await records.close();
        base.close();
        log({ msg: 'stopped' });
      })()),
  };
}

/** SIGTERM on a worker: running builds may finish within the timeout; after it they are handed back to the queue. */
async function stopWorker(worker: QueueWorker, timeoutMs: number): Promise<void> {
  const graceful = worker.stop({ wait: true });
  const timer = new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), timeoutMs).unref());
  if ((await Promise.race([graceful, timer])) === 'timeout') await worker.stop({ wait: false });
}
