import type { Readable } from 'node:stream';
import type { Digest } from '../oci/index.js';
import type { BlobIngester } from '../store/index.js';

/** A layer blob written into the content store. */
export interface LayerInfo {
  /** Digest of the blob as stored (compressed when compression is gzip). */
  digest: Digest;
  /** Digest of the uncompressed tar (the image config's `rootfs.diff_ids` entry). */
  diffId: Digest;
  /** Bytes of the stored blob. */
  size: number;
  /** Bytes of the uncompressed tar. */
  uncompressedSize: number;
  /** OCI media type of the blob: `application/vnd.oci.image.layer.v1.tar+gzip` or `...tar`. */
  mediaType: string;
  /** Tar entries written (whiteout and opaque markers included, PAX headers not). */
  entries: number;
  /**
   * Content identity of the layer: sha256 over every entry's path, type, mode, uid, gid, link target, device numbers,
   * xattrs and content digest, in archive order. Unlike the diffId it leaves mtimes out, so a step that reruns and
   * writes the same bytes at a later time has the same contentId (the solver's early cutoff relies on this).
   */
  contentId: string;
  /**
   * Bytes on disk of the archived folder, its root included, as `du` counts them: st_blocks × 512, each inode once
   * (hard links), from the stats the walk made anyway. Stored with the snapshot at commit so GC need not measure it.
   */
  diskBytes: number;
}

/** Options of {@link writeLayer}. */
export interface WriteLayerOptions {
  /** Folder to archive: an overlay upperdir or any folder. Its own metadata is not archived. */
  dir: string;
  /** Where the blob goes (a content store). */
  ingester: BlobIngester;
  /** Default 'gzip'. */
  compression?: 'gzip' | 'none';
  /** zlib level 1-9 for gzip. Default 1 (see README: level 1 keeps a layer near disk speed). */
  gzipLevel?: number;
  /** Clamp mtimes later than this (SOURCE_DATE_EPOCH, seconds) down to it. */
  sourceDateEpoch?: number;
  /**
   * Overlay upperdir semantics (default true): a character device 0/0 becomes a `.wh.NAME` whiteout entry and a
   * folder with xattr `trusted.overlay.opaque=y` gets a `.wh..wh..opq` marker.
   */
  overlay?: boolean;
  /**
   * gzip only: write the blob as gzip members (cut at entry boundaries about every MiB of tar) cached in this
   * folder by the sha256 of their uncompressed bytes, so tar regions seen before are not compressed again. The
   * diffId is unchanged; the blob bytes differ from a single-member gzip (still deterministic for a given tar).
   */
  chunkCache?: { dir: string; /** default 256 MiB */ maxBytes?: number };
  /**
   * gzip only, without a chunk cache: write the blob as gzip members (the same cut points) compressed a few at a time
   * on the thread pool, so compression uses every core instead of one. Deterministic; the diffId is unchanged.
   */
  parallelGzip?: boolean;
  signal?: AbortSignal;
}

/** Options of {@link applyLayer}. */
export interface ApplyLayerOptions {
  /** A layer blob: a file path or a stream; gzip, zstd or plain tar, detected by magic bytes. */
  source: string | Readable;
  /** Folder to unpack into (created when missing). */
  dest: string;
  /**
   * 'overlay': dest becomes an overlay lowerdir (whiteouts become char devices 0/0, opaque markers become the
   * `trusted.overlay.opaque` xattr). 'merge': whiteouts delete from dest, to flatten layers into one folder.
   */
  mode: 'overlay' | 'merge';
  signal?: AbortSignal;
}

/** One tar entry as listed by {@link listLayer}. */
export interface TarEntryInfo {
  /** Path as stored (directories end with '/'). */
  path: string;
  /** 'file' | 'link' | 'symlink' | 'character-device' | 'block-device' | 'directory' | 'fifo' | 'unknown'. */
  type: string;
  /** Permission bits including setuid/setgid/sticky (0o7777 mask). */
  mode: number;
  uid: number;
  gid: number;
  /** Data bytes (0 for anything but files); for a sparse file its real size, holes included. */
  size: number;
  /** A sparse file (GNU sparse 1.0): its data segments [offset, length]; the rest is holes. */
  sparse?: Array<[number, number]>;
  /** Seconds since the epoch. */
  mtime: number;
  /** Symlink target or hardlink target path. */
  linkname?: string;
  devmajor?: number;
  devminor?: number;
  /** Extended attributes. Values are byte strings: `Buffer.from(value, 'latin1')` gives the exact bytes. */
  xattrs?: Record<string, string>;
  /** File bytes, when asked for with `withContent`. */
  content?: Buffer;
  /** sha256 (hex) of the file's bytes, when asked for with `withDigest`. */
  sha256?: string;
}

/** Options of {@link listLayer}. */
export interface ListLayerOptions {
  source: string | Readable;
  withContent?: boolean;
  /** Each file's sha256 instead of its bytes (streamed: any size in bounded memory). Wins over withContent. */
  withDigest?: boolean;
  signal?: AbortSignal;
}
