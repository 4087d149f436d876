import type { BuildRepo } from './builds.js';
import type { CacheRecordRepo } from './cache-records.js';
import type { ImageRepo } from './images.js';
import type { LayerRepo } from './layers.js';
import type { LeaseRepo } from './leases.js';
import type { StatCacheRepo } from './stat-cache.js';

/**
 * The records of one state directory, by role. Only the composition root (src/engine state) holds all of them;
 * a part takes the roles it uses.
 */
export interface Metadata {
  images: ImageRepo;
  layers: LayerRepo;
  cacheRecords: CacheRecordRepo;
  builds: BuildRepo;
  statCache: StatCacheRepo;
  leases: LeaseRepo;
  /** run `fn` as one transaction over every role (nested calls join it) */
  transaction<T>(fn: () => T): T;
  close(): void;
}
