import type { ContentStore } from '../store/index.js';
import type { Metadata, PortableCacheRecord } from '../metadata/index.js';
import type { Digest } from '../oci/index.js';

/** `min`: the steps of the final image's chain; `max`: every step of every stage that was built. */
export type CacheMode = 'min' | 'max';

/** Where `--cache-to` writes. */
export type CacheExportSpec =
  | { type: 'local'; dest: string; mode: CacheMode; tag: string }
  | { type: 'registry'; ref: string; mode: CacheMode; mounts?: boolean }
  | { type: 'inline' };

/** Where `--cache-from` reads (a registry ref may be a cache manifest or an image with inline cache). */
export type CacheImportSpec = { type: 'local'; src: string; tag: string } | { type: 'registry'; ref: string; mounts?: boolean };

/**
 * The shared per-step cache (`--cache-registry`, the engine's `cacheRegistry`): every local miss is looked up in
 * the repository of `ref` (the team's namespace), every step that ran is pushed there; with `mounts` (default on)
 * cache mounts travel through it too.
 */
export interface CacheRegistrySpec {
  /** `host[:port]/team/path` */
  ref: string;
  /** share `RUN --mount=type=cache` directories (default true) */
  mounts?: boolean;
}

/** The parts of a state directory cache export and import touch. */
export interface CacheStores {
  store: ContentStore;
  db: Pick<Metadata, 'cacheRecords' | 'layers' | 'transaction'>;
}

/** One exported cache record: the `cache` table row without its local bookkeeping (metadata's shape). */
export type CacheEntry = PortableCacheRecord;

/** One layer the records need: the `layers` table row. */
export interface CacheLayer {
  diffId: Digest;
  blob: Digest;
  size: number;
  mediaType: string;
  /** the layer's content identity (mtimes left out), which output ids are made of */
  contentId: string;
}

/** The cache config blob (and, without blob fields, the inline cache in an image config). */
export interface CacheConfig {
  version: 1;
  mode?: CacheMode;
  records: CacheEntry[];
  layers: CacheLayer[];
}

/** What an import did. */
export interface CacheImportReport {
  /** records written into the local cache table */
  imported: number;
  /** records already there (the local one is kept) */
  present: number;
  /** records dropped because their layer could not be fetched or did not match its digest */
  dropped: number;
  /** layer blobs downloaded or copied */
  fetched: number;
  /** one line per problem (unreachable source, corrupt blob), for the progress output */
  warnings: string[];
}

/** What an export wrote. */
export interface CacheExportReport {
  records: number;
  layers: number;
  /** digest of the cache manifest (none for inline) */
  manifest?: Digest;
}
