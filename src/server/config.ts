import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { BuildError } from '../errors/index.js';
import { parseSize } from '../gc/index.js';
import { parseRegistryRef } from '../registry/index.js';
import type { TeamLimits } from '../service/index.js';
import { loadCredentialsKey } from './credentials.js';

/** Resource limits of every service build's RUN containers and of the build itself: the engine's own limits type. */
export type { BuildLimits } from '../ops/index.js';
import type { BuildLimits } from '../ops/index.js';

/** What `kiln serve` runs with: `ROOT/config.json` (`serve` section), then command-line flags. */
export interface ServerConfig {
  root: string;
  /** `HOST:PORT` or `unix:/path` */
  listen: string;
  /** the local socket plain `kiln build` hands builds to (ROOT/kiln.sock); null: none */
  localSocket: string | null;
  /** builds running at once over all teams (`--max-builds`); the rest are queued in order */
  maxBuilds: number;
  /** per-team limits of a team that sets none */
  teamDefaults: Required<TeamLimits>;
  /** SIGTERM: how long running builds may finish before they are cancelled */
  shutdownTimeoutMs: number;
  /** CA bundle template builds' RUN steps trust (mounted as a secret, never stored) */
  caBundle?: string;
  /**
   * Sandboxing of service builds (default: the isolated network, no host network, no `--security=insecure`), passed
   * to the engine by {@link serverBuildOptions}.
   */
  network: 'isolated' | 'host' | 'none';
  allowHostNetwork: boolean;
  allowInsecure: boolean;
  limits: BuildLimits;
  /**
   * `--database postgres://...` (or `KILN_DATABASE`, or `serve.database`): the records are in that PostgreSQL database
   * and builds go through its queue, taken by workers; absent: ROOT/service.db and builds run in this process.
   */
  database?: string;
  /** with a database: worker slots this process runs (`--workers N`, default 1; 0: an API-only node) */
  workers: number;
  /** `--worker`: a worker only (takes builds off the queue; no API, only `/health` on `--listen`) */
  workerOnly: boolean;
  /** `--cache-registry REF` (or `KILN_CACHE_REGISTRY`): every team's shared step cache and cache mounts, at REF/<team-id>/cache */
  cacheRegistry?: string;
  /** registries (`host[:port]`) reached over plain HTTP (`--insecure-registry`, `KILN_INSECURE_REGISTRY`); loopback always is */
  insecureRegistries: string[];
  /**
   * `--credentials-key-file PATH` (or `serve.credentialsKeyFile`), read at start: the deployment-wide AES-256 key a
   * template base's registry credentials are sealed with while its build is stored (src/server/credentials.ts)
   */
  credentialsKey?: Buffer;
}

export const DEFAULT_LISTEN = '127.0.0.1:8080';

/** Flags of `kiln serve` (undefined: from config.json or the default). */
export interface ServeFlags {
  listen?: string;
  maxBuilds?: number;
  teamConcurrentBuilds?: number;
  teamUploadBytes?: string;
  teamStoredBytes?: string;
  shutdownTimeout?: number;
  caBundle?: string;
  network?: string;
  allowHostNetwork?: boolean;
  allowInsecure?: boolean;
  noLocalSocket?: boolean;
  database?: string;
  workers?: number;
  worker?: boolean;
  /** `--slots N`: the worker slots of `--worker` (the same as `--workers N`) */
  slots?: number;
  cacheRegistry?: string;
  insecureRegistry?: string[];
  credentialsKeyFile?: string;
}

type RawServe = Partial<{
  listen: string; maxBuilds: number; shutdownTimeoutMs: number; caBundle: string; network: string; allowHostNetwork: boolean;
  allowInsecure: boolean; limits: BuildLimits; localSocket: string | null; database: string; workers: number; cacheRegistry: string; insecureRegistries: string[]; credentialsKeyFile: string;
  teamDefaults: { concurrentBuilds?: number; uploadBytesPerBuild?: number | string; storedBytes?: number | string };
}>;

function size(v: number | string | undefined, what: string, dflt: number): number {
  if (v === undefined) return dflt;
  if (typeof v === 'number') return v;
  return parseSize(v, what);
}

function positive(v: number | undefined, what: string, dflt: number): number {
  if (v === undefined) return dflt;
  if (!Number.isInteger(v) || v < 1) throw new BuildError('ERR_KILN_ARGUMENT', `${what} must be a whole number of at least 1 (got ${v})`);
  return v;
}

function nonNegative(v: number | undefined, what: string, dflt: number): number {
  if (v === undefined) return dflt;
  if (!Number.isInteger(v) || v < 0) throw new BuildError('ERR_KILN_ARGUMENT', `${what} must be a whole number of at least 0 (got ${v})`);
  return v;
}

/** Where the records are and who runs builds: `--database`, `--workers`, `--worker --slots`, `--cache-registry`. */
function scaleConfig(raw: RawServe, flags: ServeFlags, env: NodeJS.ProcessEnv): Pick<ServerConfig, 'database' | 'workers' | 'workerOnly' | 'cacheRegistry' | 'insecureRegistries'> {
  const insecureRegistries = flags.insecureRegistry ?? (env.KILN_INSECURE_REGISTRY ? env.KILN_INSECURE_REGISTRY.split(',').map((h) => h.trim()).filter(Boolean) : raw.insecureRegistries ?? []);
  const database = flags.database ?? (env.KILN_DATABASE || undefined) ?? raw.database;
  const cacheRegistry = flags.cacheRegistry ?? (env.KILN_CACHE_REGISTRY || undefined) ?? raw.cacheRegistry;
  if (cacheRegistry !== undefined) {
    const ref = parseRegistryRef(cacheRegistry);
    if (ref.tag !== undefined || ref.digest !== undefined) throw new BuildError('ERR_KILN_ARGUMENT', `--cache-registry ${cacheRegistry}: give HOST/PATH without a tag or digest (each team's cache is PATH/<team-id>/cache)`);
  }
  const workerOnly = flags.worker === true;
  if ((workerOnly || flags.workers !== undefined || flags.slots !== undefined) && !database) {
    throw new BuildError('ERR_KILN_ARGUMENT', `${workerOnly ? '--worker' : flags.slots !== undefined ? '--slots' : '--workers'} needs --database postgres://... (workers take builds off the PostgreSQL queue)`, { hint: 'give --database URL, KILN_DATABASE or serve.database in ROOT/config.json' });
  }
  if (flags.slots !== undefined && !workerOnly) throw new BuildError('ERR_KILN_ARGUMENT', '--slots goes with --worker (an API node with workers: --workers N)');
  if (workerOnly && flags.workers === 0) throw new BuildError('ERR_KILN_ARGUMENT', '--worker --workers 0 runs nothing');
  const workers = workerOnly ? positive(flags.slots ?? flags.workers, '--slots', 1) : nonNegative(flags.workers ?? raw.workers, '--workers', 1);
  return { ...(database ? { database } : {}), workers, workerOnly, ...(cacheRegistry ? { cacheRegistry } : {}), insecureRegistries };
}

/** Read `ROOT/config.json`'s `serve` section and apply the environment (KILN_DATABASE, KILN_CACHE_REGISTRY) and flags over it. */
export function loadServerConfig(root: string, flags: ServeFlags = {}, env: NodeJS.ProcessEnv = process.env): ServerConfig {
  const file = path.join(root, 'config.json');
  let raw: RawServe = {};
  if (existsSync(file)) {
    try {
      raw = ((JSON.parse(readFileSync(file, 'utf8')) as { serve?: RawServe }).serve ?? {});
    } catch (err) {
      throw new BuildError('ERR_KILN_ARGUMENT', `${file} is not valid JSON: ${(err as Error).message}`, { hint: 'fix or remove the file' });
    }
  }
  const network = flags.network ?? raw.network ?? 'isolated';
  if (network !== 'isolated' && network !== 'host' && network !== 'none') throw new BuildError('ERR_KILN_ARGUMENT', `--network: "${network}" is not one of isolated, host, none`);
  const td = raw.teamDefaults ?? {};
  // a flag's path is the caller's; config.json's is relative to the root
  const keyFile = flags.credentialsKeyFile !== undefined ? path.resolve(flags.credentialsKeyFile) : raw.credentialsKeyFile !== undefined ? path.resolve(root, raw.credentialsKeyFile) : undefined;
  return {
    root,
    listen: flags.listen ?? raw.listen ?? DEFAULT_LISTEN,
    localSocket: flags.noLocalSocket ? null : raw.localSocket === undefined ? path.join(root, 'kiln.sock') : raw.localSocket,
    maxBuilds: positive(flags.maxBuilds ?? raw.maxBuilds, '--max-builds', 2),
    teamDefaults: {
      concurrentBuilds: positive(flags.teamConcurrentBuilds ?? td.concurrentBuilds, '--team-concurrent-builds', 2),
      uploadBytesPerBuild: size(flags.teamUploadBytes ?? td.uploadBytesPerBuild, '--team-upload-bytes', 4 * 1024 ** 3),
      storedBytes: size(flags.teamStoredBytes ?? td.storedBytes, '--team-stored-bytes', 20 * 1024 ** 3),
    },
    shutdownTimeoutMs: flags.shutdownTimeout !== undefined ? flags.shutdownTimeout * 1000 : raw.shutdownTimeoutMs ?? 30_000,
    ...(flags.caBundle ?? raw.caBundle ? { caBundle: path.resolve((flags.caBundle ?? raw.caBundle)!) } : {}),
    network,
    allowHostNetwork: flags.allowHostNetwork ?? raw.allowHostNetwork ?? false,
    allowInsecure: flags.allowInsecure ?? raw.allowInsecure ?? false,
    limits: raw.limits ?? {},
    ...scaleConfig(raw, flags, env),
    ...(keyFile ? { credentialsKey: loadCredentialsKey(keyFile) } : {}),
  };
}

/** `127.0.0.1:8080` → TCP, `unix:/run/kiln.sock` → a socket path. */
export function parseListen(listen: string): { host: string; port: number } | { socket: string } {
  if (listen.startsWith('unix:')) {
    const socket = listen.slice(5);
    if (!socket) throw new BuildError('ERR_KILN_ARGUMENT', '--listen unix:PATH needs a path');
    return { socket: path.resolve(socket) };
  }
  const m = /^(.*):(\d+)$/.exec(listen);
  if (!m || Number(m[2]) > 65535) throw new BuildError('ERR_KILN_ARGUMENT', `--listen "${listen}": expected HOST:PORT or unix:/path`);
  return { host: m[1]!.replace(/^\[|\]$/g, '') || '127.0.0.1', port: Number(m[2]) };
}
