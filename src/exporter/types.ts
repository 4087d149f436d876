import type { Writable } from 'node:stream';
import type { Digest } from '../oci/index.js';
import type { BlobProvider, ContentStore } from '../store/index.js';

/** One image to put into an archive. */
export interface ExportImage {
  /** Digest of the image's manifest (or index) in the store; it and everything it references must be there. */
  manifest: Digest;
  /** Names like `app:1.0` or full refs like `example.com/team/app:1.0`; a name without tag gets `:latest`. */
  names: string[];
}

/** Options shared by the archive writers. */
export interface WriteArchiveOptions {
  /** Where the blobs come from. */
  store: BlobProvider;
  images: ExportImage[];
  /** A file path (written to a temp file, then renamed) or a stream, which is ended when the archive is done. */
  dest: string | Writable;
  /** Seconds since the epoch for every entry's mtime; default 0, so the same images give the same bytes. */
  sourceDateEpoch?: number;
  signal?: AbortSignal;
}

/** Options of {@link writeOciLayout}. */
export interface WriteOciLayoutOptions extends WriteArchiveOptions {
  /** `tar` (default) streams one tar; `dir` writes an image layout folder at `dest` (a path), adding to one already there. */
  format?: 'tar' | 'dir';
}

/** Options of {@link writeDockerArchive}. */
export type WriteDockerArchiveOptions = WriteArchiveOptions;

/** Options of {@link loadArchive}. */
export interface LoadArchiveOptions {
  /** Blobs are imported here, each checked against its digest. */
  store: ContentStore;
  /** Path of an OCI layout tar or folder, or a `docker save` tar (gzip-compressed tars are accepted too). */
  source: string;
  signal?: AbortSignal;
}

/** An image found in an archive. */
export interface LoadedImage {
  /** Manifest (or index) digest; the manifest and all it references are now in the store. */
  manifest: Digest;
  /**
   * Names as the archive gives them: `io.containerd.image.name` (else `org.opencontainers.image.ref.name`) for an OCI
   * layout, `RepoTags` for a docker-save tar. Possibly empty.
   */
  names: string[];
}
