import type { ContentStore } from '../store/index.js';
import type { MetadataDb } from '../metadata/index.js';
import type { Snapshotter } from '../snapshot/index.js';
import type { Executor, Ulimit } from '../executor/index.js';
import type { CacheMountOpened } from './cache-mount.js';
import type { Descriptor, Digest, ImageConfig, Manifest } from '../oci/index.js';

/** A local image, read from the image store. */
export interface LocalImage {
  ref: string;
  manifestDigest: Digest;
  manifest: Manifest;
  config: ImageConfig;
  configDescriptor: Descriptor;
}

export interface SecretSource {
  id: string;
  file?: string;
  env?: string;
}

export interface OpsOptions {
  store: ContentStore;
  db: MetadataDb;
  snapshots: Snapshotter;
  executor: Executor;
  /** state directory (cache mounts live under it) */
  stateDir: string;
  contextDir: string;
  /** .dockerignore'd paths of the context (relative) */
  isIgnored: (rel: string) => boolean;
  ignorePatterns: string[];
  statCache: { get(k: string): string | undefined; set(k: string, d: string): void };
  secrets: Map<string, SecretSource>;
  /** the image a source vertex names */
  loadImage(ref: string): Promise<LocalImage>;
  /** network of RUN steps that do not choose one (`kiln build --network`); default host */
  network?: 'host' | 'none';
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
