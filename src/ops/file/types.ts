import type { ResolvedSources } from '../../context/index.js';
/** Numeric owner applied to copied entries. */
export interface Owner {
  uid: number;
  gid: number;
}

/**
 * One COPY or ADD step: copy sources from `srcRoot` into the root filesystem at `destRoot`, with Docker/BuildKit
 * semantics (directory sources copy their contents, wildcards per Go `filepath.Match`, `--parents`, `--exclude`,
 * `--chown`, `--chmod`, ADD archive unpacking).
 */
export interface CopyRequest {
  /** the tree sources are read from: the build context dir or another stage's rootfs dir */
  srcRoot: string;
  /**
   * Source words, already variable-expanded (shell escapes removed). May contain wildcards (Go `filepath.Match` per
   * component; `\` escapes). Relative to srcRoot: a leading '/' is the root and '..' cannot leave the root.
   */
  sources: string[];
  /** inline heredoc sources: written as files named `path` (mode 0644, mtime now) with `data` */
  inline?: Array<{ path: string; data: string }>;
  /** destination root filesystem; every write stays inside it (dest symlinks are resolved inside destRoot) */
  destRoot: string;
  /** dest as written, already expanded; a relative dest is joined with workdir. A trailing '/' means "directory". */
  dest: string;
  /** the stage's working directory (absolute inside destRoot) */
  workdir: string;
  /**
   * Owner of everything copied and of created parent directories. Docker's default is 0:0 (used when undefined),
   * unless `preserveOwnership` is set.
   */
  chown?: Owner;
  /**
   * Keep each source entry's uid/gid when `chown` is not given. Docker (BuildKit and classic) does this for
   * `COPY --from=<stage|image>`; context sources are reset to 0:0. Archives unpacked by ADD always keep the
   * archive's owners unless `chown` is given.
   */
  preserveOwnership?: boolean;
  /**
   * `--chmod`: octal ('755', up to 07777) or symbolic ('u+x', 'u=rwX,go=rX', '+x', 'g=u'). Applied to every copied
   * file and directory; an octal mode also applies to parent directories this copy creates (BuildKit since 2025).
   */
  chmod?: string;
  /**
   * The .dockerignore matcher for the context: true for paths (relative to srcRoot, '/'-separated, no leading './')
   * that were not sent. Ignored entries behave as if absent; an ignored directory stays visible when some entry
   * below it is re-included (see `ignoreHasExceptions`).
   */
  isIgnored?: (relPath: string) => boolean;
  /**
   * Whether the ignore rules have '!' exceptions. When false, ignored directories are skipped without being read.
   * Defaults to true when `isIgnored` is given (correct but slower on large ignored trees).
   */
  ignoreHasExceptions?: boolean;
  /** COPY --exclude patterns (.dockerignore dialect), matched against paths relative to each source */
  excludes?: string[];
  /** COPY --parents: keep each source's path below srcRoot, or below a `/./` pivot in the source */
  parents?: boolean;
  /** ADD: unpack local tar archives (plain, gzip, bzip2, xz, zstd; detected by content) into dest */
  unpackArchives?: boolean;
  /**
   * Follow symlinks named by a source word (and by wildcard matches), resolving them inside srcRoot. Docker does
   * this for every COPY/ADD source. Default true. Symlinks below a copied directory are always copied as symlinks.
   */
  followSourceSymlinks?: boolean;
  /** copy extended attributes (lsetxattr, src/sys); default true */
  xattrs?: boolean;
  /**
   * The step's sources, resolved once (src/context `resolveSources`): the copy writes exactly these entries. When
   * absent, copyInto resolves `sources` itself with the same resolver.
   */
  resolved?: ResolvedSources;
  /** fail when a source file changed since it was resolved (context sources) */
  checkUnchanged?: boolean;
  signal?: AbortSignal;
}

/** What a copy wrote. */
export interface CopyResult {
  /** non-directory entries written (files, symlinks, hardlinks, devices) */
  files: number;
  /** bytes of regular-file content written */
  bytes: number;
}

/** Options of {@link fetchUrl}. */
export interface FetchUrlOptions {
  url: string;
  /** expected digest of the body, `sha256:<hex>` */
  checksum?: string;
  /** where to write the body (written to a temp name, then renamed); mode 0600, mtime from Last-Modified */
  destFile: string;
  signal?: AbortSignal;
}

/** Result of {@link fetchUrl}. */
export interface FetchUrlResult {
  /** sha256 digest of the body */
  digest: string;
  /** file name Docker gives the download: last URL path segment, else Content-Disposition, else `__unnamed__` */
  name: string;
  /** Last-Modified, when the server sent a valid one */
  mtime?: Date;
  size: number;
}
