import type { Digest } from '../oci/index.js';
import type { Readable, Writable } from 'node:stream';

export interface BlobInfo {
  digest: Digest;
  size: number;
}

/** A blob being written: bytes go to `stream`; `commit` verifies and moves it into place atomically. */
export interface BlobWriter {
  readonly stream: Writable;
  /** Finish writing, fsync, verify against `expected` (if given), rename into place. */
  commit(opts?: { expected?: Digest }): Promise<BlobInfo>;
  /** Drop the temp file. Safe to call after commit (no-op). */
  abort(): Promise<void>;
}

/** Reads blobs by digest. */
export interface BlobProvider {
  has(digest: Digest): Promise<boolean>;
  info(digest: Digest): Promise<BlobInfo | undefined>;
  /** Path of the blob's file, for tools that want a file (tar readers, copy). */
  path(digest: Digest): string;
  /** Reads and (unless verify is false) checks the digest; throws ERR_KILN_STORE_CORRUPT on mismatch. */
  read(digest: Digest, opts?: { verify?: boolean }): Promise<Buffer>;
  createReadStream(digest: Digest): Readable;
}

/** Writes blobs. */
export interface BlobIngester {
  write(data: Uint8Array | string, opts?: { expected?: Digest }): Promise<BlobInfo>;
  writer(): Promise<BlobWriter>;
}

/** Lists, verifies and deletes blobs. */
export interface BlobManager {
  list(): AsyncIterable<BlobInfo>;
  /** Re-hash the blob's bytes; false when missing or corrupt. */
  verify(digest: Digest): Promise<boolean>;
  delete(digest: Digest): Promise<void>;
}

export type ContentStore = BlobProvider & BlobIngester & BlobManager & { readonly root: string };
