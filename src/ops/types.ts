import type { CacheMountOpened, LayerCache } from '../cache/index.js';
import type { Executor, Ulimit } from '../executor/index.js';
import type { Descriptor, Digest, ImageConfig, Manifest } from '../oci/index.js';
import type { SecretSource } from '../graph/index.js';
import type { ContextWatch, ResolvedSources } from '../context/index.js';

/** A local image, read from the image store. */
export interface LocalImage {
  ref: string;
  manifestDigest: Digest;
  manifest: Manifest;
  config: ImageConfig;
  configDescriptor: Descriptor;
}

/** Resource limits of a build's RUN steps. */
export interface BuildLimits {
  /** memory of each RUN (`-m/--memory`) */
  memoryBytes?: number;
  /** processes/threads of each RUN (`--pids-limit`) */
  pids?: number;
  /** CPU weight of each RUN (`-c/--cpu-shares`, 1024 = Docker's default) */
  cpuShares?: number;
  /** wall-clock limit of each RUN (`--step-timeout`) */
  stepTimeoutMs?: number;
  /** wall-clock limit of the whole build (`--build-timeout`; applied by the engine) */
  buildTimeoutMs?: number;
  /** bytes the build's RUN steps may write, all steps together (`--disk-limit`), checked as each step's upper dir grows */
  diskBytes?: number;
}

/** A local folder steps read from: the main context or a named one, with its `.dockerignore`. */
export interface LocalContext {
  contextDir: string;
  isIgnored: (rel: string) => boolean;
  ignorePatterns: string[];
}

export interface OpsOptions {
  /** layers, blobs and snapshots: mounts, commits, cache-hit checks (src/cache) */
  cache: LayerCache;
  executor: Executor;
  /** state directory (cache mounts live under it) */
  stateDir: string;
  contextDir: string;
  /** .dockerignore'd paths of the context (relative) */
  isIgnored: (rel: string) => boolean;
  ignorePatterns: string[];
  /** `--build-context NAME=DIR`: named local contexts, read by COPY (`op.context`) and binds (`m.context`) */
  namedContexts?: Map<string, LocalContext>;
  statCache: { get(k: string): string | undefined; set(k: string, d: string): void };
  /** a long-lived process's watched context trees (kiln serve): context sources read through their memo */
  contextWatch?: ContextWatch<ResolvedSources>;
  secrets: Map<string, SecretSource>;
  /** the image a source vertex names */
  loadImage(ref: string): Promise<LocalImage>;
  /** resource limits of every RUN step of the build (unset = unlimited) */
  limits?: BuildLimits;
  /** network of RUN steps that do not choose one (`kiln build --network`); default host */
  network?: 'host' | 'none' | 'isolated';
  /** `kiln build --add-host` for every RUN */
  extraHosts?: Array<{ host: string; ip: string }>;
  /** `kiln build --ulimit` for every RUN (not in cache keys, as BuildKit) */
  ulimits?: Ulimit[];
  /** `kiln build --shm-size` for every RUN, bytes */
  shmSizeBytes?: number;
  /** clamp layer timestamps (SOURCE_DATE_EPOCH) */
  sourceDateEpoch?: number;
  /** the build this runner serves (recorded in cache-mount use logs) */
  buildId?: string;
  /** told of each cache mount a RUN opens (the shared cache imports into it and exports it after the build) */
  onCacheMount?: (m: CacheMountOpened) => Promise<void>;
}

/** The options with the named local context `name` in place of the main one (the main one when `name` is unset). */
export function withLocalContext(o: OpsOptions, name: string | undefined): OpsOptions {
  if (name === undefined) return o;
  const c = o.namedContexts?.get(name);
  if (!c) throw new Error(`named context "${name}" is not known to the runner`);
  return { ...o, ...c };
}

/** The watched-context options of a local context's resolution (none in a one-shot process). */
export function watchOf(lo: OpsOptions): { watch?: ContextWatch<ResolvedSources>; ignoreKey?: string } {
  return lo.contextWatch ? { watch: lo.contextWatch, ignoreKey: JSON.stringify(lo.ignorePatterns) } : {};
}
