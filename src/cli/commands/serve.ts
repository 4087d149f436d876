import type { Command } from 'commander';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { BuildError } from '../../errors/index.js';
import { defaultRoot } from '../../engine/index.js';
import type { ServiceStore } from '../../service/index.js';
import { parseSize } from '../../gc/index.js';
import type { CliContext } from '../shared.js';

/**
 * The server part is loaded only by `kiln serve`, by a path the bundler does not follow: the HTTP stack (hono, zod,
 * prom-client) stays out of dist/kiln.mjs, whose start-up every other command pays (measured: +0.3 s when bundled).
 */
async function loadServer(): Promise<typeof import('../../server/index.js')> {
  const here = import.meta.url;
  const rel = /\/kiln\.mjs$/.test(new URL(here).pathname) ? './server/index.js' : '../../server/index.js';
  return (await import(new URL(rel, here).href)) as typeof import('../../server/index.js');
}

function countOption(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw new BuildError('ERR_KILN_ARGUMENT', `"${v}" is not a whole number of at least 0`);
  return n;
}

function intOption(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new BuildError('ERR_KILN_ARGUMENT', `"${v}" is not a whole number of at least 1`);
  return n;
}

/** `kiln serve` */
export function registerServe(program: Command, cli: CliContext & { root?: string; version: string }): void {
  program.command('serve')
    .description('Run the build service: HTTP API with API keys, team-scoped caches, uploads, SSE events, /v2/ (see README "kiln serve")')
    .option('--listen <addr>', 'HOST:PORT or unix:/path (default 127.0.0.1:8080, or serve.listen in ROOT/config.json)')
    .option('--max-builds <n>', 'builds running at once over all teams; the rest are queued in order (default 2)', intOption)
    .option('--team-concurrent-builds <n>', 'default per-team limit of builds at once (default 2)', intOption)
    .option('--team-upload-bytes <size>', 'default per-team limit of context bytes per build (default 4GiB)')
    .option('--team-stored-bytes <size>', 'default per-team limit of stored bytes, kept by the team\'s GC (default 20GiB)')
    .option('--shutdown-timeout <seconds>', 'SIGTERM: how long running builds may finish before they are cancelled (default 30)', intOption)
    .option('--ca-bundle <file>', 'CA bundle template builds\' RUN steps trust (mounted, never stored)')
    .option('--network <mode>', 'network of service builds: isolated (default: own namespace, no route to the host\'s loopback), none or host')
    .option('--no-local-socket', 'do not listen on ROOT/kiln.sock for local `kiln build` hand-offs')
    .option('--database <url>', 'postgres://... (or KILN_DATABASE, serve.database): records in PostgreSQL, builds through its queue to workers')
    .option('--workers <n>', 'with --database: worker slots in this process (default 1; 0: an API-only node)', countOption)
    .option('--worker', 'with --database: a worker only (takes builds off the queue; --listen serves only /health)')
    .option('--slots <n>', 'with --worker: builds this worker runs at once (default 1)', intOption)
    .option('--cache-registry <ref>', 'HOST/PATH (or KILN_CACHE_REGISTRY): every team\'s shared step cache and cache mounts, at REF/<team-id>/cache')
    .option('--credentials-key-file <path>', 'a 32-byte key (the same file on every node; or serve.credentialsKeyFile): a base image\'s registry credentials are stored with a queued build only encrypted with it')
    .option('--insecure-registry <host>', 'a registry (HOST[:PORT]) reached over plain HTTP, e.g. the cache registry inside a cluster (repeatable; or KILN_INSECURE_REGISTRY=h1,h2)', (v: string, prev: string[] = []) => [...prev, v])
    .action(async (o: Record<string, unknown>) => {
      const { loadServerConfig, startServer } = await loadServer();
      const root = path.resolve(cli.root ?? defaultRoot());
      mkdirSync(root, { recursive: true, mode: 0o711 });
      const config = loadServerConfig(root, {
        ...(o.listen ? { listen: o.listen as string } : {}),
        ...(o.maxBuilds ? { maxBuilds: o.maxBuilds as number } : {}),
        ...(o.teamConcurrentBuilds ? { teamConcurrentBuilds: o.teamConcurrentBuilds as number } : {}),
        ...(o.teamUploadBytes ? { teamUploadBytes: o.teamUploadBytes as string } : {}),
        ...(o.teamStoredBytes ? { teamStoredBytes: o.teamStoredBytes as string } : {}),
        ...(o.shutdownTimeout ? { shutdownTimeout: o.shutdownTimeout as number } : {}),
        ...(o.caBundle ? { caBundle: o.caBundle as string } : {}),
        ...(o.network ? { network: o.network as string } : {}),
        ...(o.localSocket === false ? { noLocalSocket: true } : {}),
        ...(o.database ? { database: o.database as string } : {}),
        ...(o.workers !== undefined ? { workers: o.workers as number } : {}),
        ...(o.worker ? { worker: true } : {}),
        ...(o.slots !== undefined ? { slots: o.slots as number } : {}),
        ...(o.cacheRegistry ? { cacheRegistry: o.cacheRegistry as string } : {}),
        ...(o.insecureRegistry ? { insecureRegistry: o.insecureRegistry as string[] } : {}),
        ...(o.credentialsKeyFile ? { credentialsKeyFile: o.credentialsKeyFile as string } : {}),
      });
      const server = await startServer(config, { version: cli.version });
      process.stderr.write(`kiln serve: listening on ${server.url}${config.localSocket ? ` and unix:${config.localSocket}` : ''}\n`);
      await new Promise<void>((resolve) => {
        let stopping = false;
        const stop = (sig: NodeJS.Signals): void => {
          if (stopping) {
            process.stderr.write(`kiln serve: ${sig} again: exiting now\n`);
            process.exit(1);
          }
          stopping = true;
          process.stderr.write(`kiln serve: ${sig}: not accepting builds; waiting up to ${config.shutdownTimeoutMs / 1000}s for running ones\n`);
          void server.close().then(resolve);
        };
        process.on('SIGTERM', stop);
        process.on('SIGINT', stop);
      });
    });
}

/** The service's store as `kiln serve` would open it: `--database`/KILN_DATABASE/serve.database, else ROOT/service.db. */
async function openStore(cli: { root?: string }, o: { database?: string }): Promise<ServiceStore> {
  const { loadServerConfig, openServiceStore } = await loadServer();
  const r = path.resolve(cli.root ?? defaultRoot());
  mkdirSync(r, { recursive: true, mode: 0o711 });
  const config = loadServerConfig(r, o.database ? { database: o.database } : {});
  return openServiceStore({ root: r, ...(config.database ? { database: config.database, poolSize: 2, applicationName: 'kiln admin' } : {}) });
}

/** Run one admin command on the store, closing it after. */
async function withStore(cli: { root?: string }, o: { database?: string }, fn: (db: ServiceStore) => Promise<void>): Promise<void> {
  const db = await openStore(cli, o);
  try {
    await fn(db);
  } finally {
    await db.close();
  }
}

function limitsFrom(o: Record<string, unknown>): Record<string, number> {
  return {
    ...(o.concurrentBuilds ? { concurrentBuilds: intOption(o.concurrentBuilds as string) } : {}),
    ...(o.uploadBytes ? { uploadBytesPerBuild: parseSize(o.uploadBytes as string, '--upload-bytes') } : {}),
    ...(o.storedBytes ? { storedBytes: parseSize(o.storedBytes as string, '--stored-bytes') } : {}),
  };
}

/** `kiln admin team create|ls`, `kiln admin key create|ls|revoke` (on the service's store; a running server sees them at once) */
export function registerAdmin(program: Command, cli: { root?: string }): void {
  const admin = program.command('admin').description('Teams and API keys of the build service (kiln serve)')
    .option('--database <url>', 'the PostgreSQL store of `kiln serve --database` (or KILN_DATABASE, serve.database); default ROOT/service.db');
  const db = (): { database?: string } => admin.opts() as { database?: string };
  const team = admin.command('team').description('Teams');
  team.command('create').argument('<name>', 'team name (lowercase letters, digits, - and _)')
    .option('--concurrent-builds <n>', 'builds of this team at once')
    .option('--upload-bytes <size>', 'context bytes per build')
    .option('--stored-bytes <size>', 'bytes the team may keep (its GC prunes down to it)')
    .description('Create a team').action((name: string, o: Record<string, unknown>) => withStore(cli, db(), async (s) => {
      const t = await s.createTeam(name, limitsFrom(o));
      process.stdout.write(`${t.name}\t${t.id}\n`);
    }));
  team.command('ls').description('List teams').action(() => withStore(cli, db(), async (s) => {
    for (const t of await s.listTeams()) process.stdout.write(`${t.name}\t${t.id}\t${JSON.stringify(t.limits)}\n`);
  }));
  const key = admin.command('key').description('API keys (only their sha256 is stored)');
  key.command('create').requiredOption('--team <name>', 'the team the key acts for').description('Create a key; it is printed once')
    .action((o: { team: string }) => withStore(cli, db(), async (s) => {
      const t = await s.getTeamByName(o.team);
      if (!t) throw new BuildError('ERR_KILN_SERVICE_NOT_FOUND', `no team "${o.team}"`, { hint: 'kiln admin team create NAME' });
      const k = await s.createKey(t.id);
      process.stdout.write(`${k.key}\n`);
      process.stderr.write(`key ${k.id} for team ${t.name}: store it now, it is not shown again\n`);
    }));
  key.command('ls').option('--team <name>', 'only this team\'s keys').description('List keys (ids, never the keys)').action((o: { team?: string }) => withStore(cli, db(), async (s) => {
    const t = o.team ? await s.getTeamByName(o.team) : undefined;
    if (o.team && !t) throw new BuildError('ERR_KILN_SERVICE_NOT_FOUND', `no team "${o.team}"`);
    process.stdout.write('ID\tTEAM\tCREATED\tSTATUS\n');
    for (const k of await s.listKeys(t?.id)) process.stdout.write(`${k.id}\t${k.team}\t${new Date(k.created).toISOString()}\t${k.revoked ? `revoked ${new Date(k.revoked).toISOString()}` : 'active'}\n`);
  }));
  key.command('revoke').argument('<id>', 'key id (kiln admin key ls)').description('Revoke a key: it is refused at once').action((id: string) => withStore(cli, db(), async (s) => {
    if (!(await s.revokeKey(id))) throw new BuildError('ERR_KILN_SERVICE_NOT_FOUND', `no active key "${id}"`, { hint: 'kiln admin key ls lists the keys' });
    process.stderr.write(`revoked ${id}\n`);
  }));
}
