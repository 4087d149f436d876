import type { Digest } from '../oci/index.js';

export interface ImageRecord {
  name: string;
  manifest: Digest;
  created: number;
}

export interface LayerRecord {
  diffId: Digest;
  /** compressed blob in the content store */
  blob: Digest;
  blobSize: number;
  mediaType: string;
  /** digest of the layer's content without timestamps (early cutoff compares this) */
  contentId: string;
  /** unpacked snapshot directory id, if unpacked */
  snapshotId: number | null;
  created: number;
  lastUsed: number;
}

/** A cache record as it travels between machines (cache export and import): no local bookkeeping. */
export interface PortableCacheRecord {
  key: string;
  /** identity of the step's output (what later steps are keyed on) */
  outputId: string;
  /** the layer the step produced, or null for a step without a filesystem change */
  diffId: Digest | null;
  /** human name of the step when it was recorded */
  name: string;
  /** the inputs the key was made from, for explaining misses */
  inputs: Record<string, unknown>;
  /** when the output was first produced (ms); history `created` of cache hits comes from it */
  created: number;
}

/** A row of the `cache` table: the portable record and when and how often this machine used it. */
export interface CacheRecord extends PortableCacheRecord {
  lastUsed: number;
  useCount: number;
}

export interface BuildRecord {
  id: string;
  started: number;
  finished: number | null;
  /** `interrupted`: stopped by a signal, or its process died (marked at the next start) */
  status: 'running' | 'success' | 'failed' | 'interrupted';
  target: string;
  context: string;
  dockerfile: string;
  args: Record<string, string>;
  tags: string[];
  imageDigest: string | null;
  steps: Array<Record<string, unknown>>;
  error: string | null;
  /** `pid:starttime` of the process running the build (null in records from before owners were kept) */
  owner?: string | null;
}

/** A running build's claim on what it uses (src/gc): rows of dead pids are ignored and cleaned up. */
export interface LeaseRecord {
  id: string;
  pid: number;
  created: number;
}
