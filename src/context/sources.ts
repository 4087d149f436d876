/**
 * COPY/ADD source resolution, done once per step: Docker's path rules (wildcards per Go `filepath.Match`, `--parents`
 * pivots and include patterns, `--exclude`, `.dockerignore` with re-included directories, symlinks followed exactly
 * where Docker follows them: a source word and its wildcard matches, never links below a copied directory) applied
 * to a source root (the build context, a stage's or an image's root) into a frozen list of entries. The cache key
 * hashes that list ({@link ResolvedSources.digest}); the copier (src/ops/file) writes from it and from nothing else,
 * so whatever reaches the layer is in the key.
 * @internal
 */
import { createHash } from 'node:crypto';
import { closeSync, fstatSync, openSync, readSync, type Stats } from 'node:fs';
import path from 'node:path';
import { dataExtents, hasHoles, type Extent } from '../sparse/index.js';
import { BuildError } from '../errors/index.js';
import { compileMatcher, matchWithParent, type CompiledMatcher } from './pattern-matcher.js';
import { cleanAbs, cleanPath, compileGoMatch, containsWildcards, splitWildcards, type GoMatcher } from './source-words.js';
import { absPath, resolveInRoot, SourceTree } from './source-tree.js';
import type { ContextWatch } from './watch.js';
import { readXattrsOf } from './xattrs.js';

/** Key-format of the resolved-sources digest (bumped with the solver's key version). */
export const SOURCES_FORMAT = 'kiln.sources.v2';
const FORMAT = SOURCES_FORMAT;
/** Files changed this recently are not put in the stat cache: file times tick coarsely (jiffies). */
const RACY_MS = 50;
/** Files this big are looked at for holes when hashed (one fstat). */
const SPARSE_CHECK = 1024 * 1024;
const ZEROS = Buffer.alloc(1024 * 1024);

export type SourceEntryType = 'file' | 'dir' | 'symlink' | 'fifo' | 'char' | 'block';

/** One entry to copy, with everything that can reach the layer or a later step. */
export interface SourceEntry {
  /** path below the unit's target ('' for the unit itself), '/'-separated */
  readonly rel: string;
  /** root-relative path it is read from */
  readonly src: string;
  readonly type: SourceEntryType;
  /** permission bits with setuid/setgid/sticky */
  readonly perm: number;
  /** the source's owner (reaches the image only with keepOwnership) */
  readonly uid: number;
  readonly gid: number;
  readonly size: number;
  /** sha256 hex of a regular file's bytes */
  readonly digest?: string;
  readonly linkTarget?: string;
  /** `rel` of the first entry of this unit sharing the inode: written as a hardlink to it */
  readonly hardlink?: string;
  /** extended attributes, name → hex value */
  readonly xattrs?: Readonly<Record<string, string>>;
  /** device number of a character or block device */
  readonly rdev?: number;
  /** a directory created only because something below it is copied (a `--parents`/`--exclude` parent) */
  readonly lazy?: boolean;
  /** times are copied onto the result but never keyed (a layer's times are not content) */
  readonly atimeMs: number;
  readonly mtimeMs: number;
  /** dev:ino:size:mtime:ctime as read, to detect a change between resolution and copy */
  readonly statKey: string;
}

/** One matched source: a file, link or directory (whose entries follow it). */
export interface SourceUnit {
  readonly word: string;
  /** the path as matched, root-relative ('' for the root), before a final symlink was followed */
  readonly matched: string;
  /** ADD of a local tar archive: the digest of its extracted content (decompressed), which is what is keyed */
  readonly archive?: { digest: string };
  readonly entries: readonly SourceEntry[];
}

/** The frozen result of resolving a step's sources. */
export interface ResolvedSources {
  readonly root: string;
  readonly units: readonly SourceUnit[];
  /** true when nothing matched and Docker fails the step for it */
  readonly nothingMatched: boolean;
  /** what the cache key hashes */
  readonly digest: string;
  /** how many entries, bytes read for hashing, files hashed (not from the stat cache) */
  readonly entryCount: number;
  readonly bytesRead: number;
  readonly filesHashed: number;
  /** true when a watched root's memo gave the whole result: nothing was walked */
  readonly recalled: boolean;
  /** entries read again into a watched root's last result (only named files changed since it): nothing was walked */
  readonly patched: number;
}

/** Maps a stat key (dev, ino, size, mtime, ctime) to a digest (content, and `x|…` for xattrs, `a|…` for archives). */
export interface StatCache {
  get(key: string): string | undefined;
  set(key: string, value: string): void;
}

/** Options of {@link resolveSources}. */
export interface ResolveSourcesOptions {
  /** the source root: the build context or a stage's mounted root */
  root: string;
  /** source words, variable-expanded; a leading '/' is the root and '..' cannot leave it */
  sources: readonly string[];
  /** heredoc sources of the same step (they count as "something to copy") */
  inlineCount?: number;
  /** .dockerignore: true for paths not sent (context sources only) */
  isIgnored?: (rel: string) => boolean;
  /** whether the ignore rules have '!' exceptions (ignored directories must then be looked into) */
  ignoreHasExceptions?: boolean;
  /** COPY --exclude patterns */
  excludes?: readonly string[];
  /** COPY --parents */
  parents?: boolean;
  /** follow symlinks named by source words (Docker does; default true) */
  followSourceSymlinks?: boolean;
  /** the source's owners reach the image (no --chown, a stage or image source): then they are keyed */
  keepOwnership?: boolean;
  /** read and key xattrs (default true) */
  xattrs?: boolean;
  /** ADD: the extracted-content digest of a local archive, or null when the file is not an archive */
  archiveDigest?: (absFile: string) => Promise<string | null>;
  /** 'COPY' or 'ADD', for messages */
  command?: string;
  /** content digests by stat key; only for roots whose stat keys are stable (the context) */
  statCache?: StatCache;
  /**
   * watched trees of a long-lived process (the context only): the walk reads through their memo, and a whole result
   * is recalled when nothing under the root changed (needs `ignoreKey` when `isIgnored` is given)
   */
  watch?: ContextWatch<ResolvedSources>;
  /** what `isIgnored` was made from (the ignore patterns), so results under different rules are kept apart */
  ignoreKey?: string;
  signal?: AbortSignal;
}

interface Unit {
  word: string;
  matched: string;
  rel: string;
  include?: CompiledMatcher;
}

function compilePatterns(patterns: readonly string[], flag: string): CompiledMatcher {
  try {
    return compileMatcher(patterns);
  } catch (err) {
    throw new BuildError('ERR_KILN_COPY_OPTION', `invalid ${flag} pattern: ${(err as Error).message}`, { cause: err });
  }
}

function notFound(word: string, what?: string): BuildError {
  return new BuildError('ERR_KILN_CONTEXT_NOT_FOUND', `source "${what ?? word}": file not found`, { details: { source: word } });
}

/** True when `word` is a wildcard whose literal directory part is not the root (it exists, or expansion threw). */
function searchesSubdir(word: string, parents: boolean): boolean {
  const pivot = parents ? word.indexOf('/./') : -1;
  const base = pivot >= 0 ? word.slice(0, pivot) : word;
  const { dir, pattern } = splitWildcards(cleanAbs(base));
  if (parents && pivot < 0) return false;
  return pattern !== '' ? cleanAbs(dir) !== '/' : parents && cleanAbs(dir) !== '/';
}

function absRel(base: string, rel: string): string {
  if (base === '') return rel;
  return rel === '' ? base : `${base}/${rel}`;
}

/** Expand one source word into units (wildcards, --parents pivots). */
function expandSource(tree: SourceTree, word: string, o: { parents: boolean; follow: boolean }): Unit[] {
  if (!o.parents) return matchWord(tree, word, o.follow, undefined);
  const pivot = word.indexOf('/./');
  const base = pivot < 0 ? '/' : word.slice(0, pivot);
  const patternRaw = pivot < 0 ? word : word.slice(pivot + 3);
  const pattern = cleanAbs(patternRaw).slice(1);
  const include = pattern === '' ? undefined : compilePatterns([pattern], '--parents source');
  const units = matchWord(tree, base, o.follow, include).map((u) => ({ ...u, word }));
  if (!containsWildcards(base) && !containsWildcards(pattern)) {
    const required = cleanAbs(base + '/' + pattern).slice(1);
    if (!tree.lstat(resolveInRoot(tree, required, o.follow))) throw notFound(word, '/' + required);
  }
  return units;
}

function matchWord(tree: SourceTree, word: string, follow: boolean, include: CompiledMatcher | undefined): Unit[] {
  const { dir, pattern } = splitWildcards(cleanAbs(word));
  if (pattern === '') {
    const matched = cleanAbs(dir).slice(1);
    const rel = resolveInRoot(tree, matched, follow);
    if (!tree.lstat(rel)) throw notFound(word);
    return [{ word, matched, rel, ...(include ? { include } : {}) }];
  }
  let matcher: GoMatcher;
  try {
    matcher = compileGoMatch(pattern);
  } catch (err) {
    throw new BuildError('ERR_KILN_COPY_OPTION', `invalid source pattern "${word}": ${(err as Error).message}`, { cause: err });
  }
  const base = resolveInRoot(tree, cleanAbs(dir).slice(1), follow);
  const baseSt = tree.lstat(base);
  if (!baseSt) throw notFound(word, '/' + cleanAbs(dir).slice(1));
  const units: Unit[] = [];
  const walk = (rel: string, depth: number): void => {
    for (const name of tree.readdir(absRel(base, rel))) {
      const childRel = rel === '' ? name : `${rel}/${name}`;
      const full = absRel(base, childRel);
      const st = tree.lstat(full);
      if (!st) continue;
      if (matcher.match(childRel)) {
        const resolved = resolveInRoot(tree, full, follow);
        if (!tree.lstat(resolved)) throw notFound(word, '/' + full);
        units.push({ word, matched: full, rel: resolved, ...(include ? { include } : {}) });
        continue;
      }
      if (st.isDirectory() && depth < matcher.maxDepth) walk(childRel, depth + 1);
    }
  };
  if (baseSt.isDirectory()) walk('', 1);
  return units;
}

function entryType(st: Stats): SourceEntryType | null {
  if (st.isFile()) return 'file';
  if (st.isDirectory()) return 'dir';
  if (st.isSymbolicLink()) return 'symlink';
  if (st.isFIFO()) return 'fifo';
  if (st.isCharacterDevice()) return 'char';
  if (st.isBlockDevice()) return 'block';
  return null; // a socket: Docker does not send it, so it is not copied and not keyed
}

function statKeyOf(st: Stats): string {
  return `${st.dev}:${st.ino}:${st.size}:${st.mtimeMs}:${st.ctimeMs}`;
}

type Draft = { -readonly [K in keyof SourceEntry]: SourceEntry[K] } & { ino?: string };

/** One entry as read (no digest, xattrs or hardlink yet). */
function makeDraft(tree: SourceTree, src: string, rel: string, st: Stats, type: SourceEntryType): Draft {
  // one plain object per entry, no temporaries: a 20,000-file context is resolved on every build
  const d: Draft = {
    rel,
    src,
    type,
    perm: st.mode & 0o7777,
    uid: st.uid,
    gid: st.gid,
    size: type === 'file' ? st.size : 0,
    atimeMs: st.atimeMs,
    mtimeMs: st.mtimeMs,
    statKey: statKeyOf(st),
  };
  if (type === 'file') d.ino = `${st.dev}:${st.ino}`;
  else if (type === 'char' || type === 'block') d.rdev = st.rdev;
  else if (type === 'symlink') d.linkTarget = tree.readlink(src);
  return d;
}

/** The walk fsutil's copy performs below one unit: include/exclude decisions, lazily created parents. */
function walkUnit(tree: SourceTree, unit: Unit, exclude: CompiledMatcher | undefined, signal?: AbortSignal): Draft[] {
  const out: Draft[] = [];
  const pending: Array<{ draft: Draft; emitted: boolean }> = [];
  let ticks = 0;
  const flushPending = (): void => {
    for (const p of pending) {
      if (p.emitted) continue;
      out.push({ ...p.draft, lazy: true });
      p.emitted = true;
    }
  };
  const visit = (src: string, rel: string, pInc: Uint8Array | null, pExc: Uint8Array | null): void => {
    if ((++ticks & 255) === 0) signal?.throwIfAborted();
    let include = true;
    let excluded = false;
    let incBits: Uint8Array | null = null;
    let excBits: Uint8Array | null = null;
    if (rel !== '') {
      if (unit.include) {
        const r = matchWithParent(unit.include, rel, pInc);
        include = r.matched;
        incBits = r.bits;
      }
      if (exclude) {
        const r = matchWithParent(exclude, rel, pExc);
        if (r.matched) {
          include = false;
          excluded = true;
        }
        excBits = r.bits;
      }
      if (!include && !unit.include && !exclude?.hasExclusions) return;
    }
    const st = tree.lstat(src);
    if (!st) return;
    const type = entryType(st);
    if (type === null) return;
    if (!include && type !== 'dir') return;
    if (include) flushPending();
    const draft = makeDraft(tree, src, rel, st, type);
    if (type !== 'dir') {
      out.push(draft);
      return;
    }
    if (include) out.push(draft);
    pending.push({ draft, emitted: include });
    try {
      if (excluded && !exclude?.hasExclusions) return;
      for (const name of tree.readdir(src)) {
        visit(src === '' ? name : `${src}/${name}`, rel === '' ? name : `${rel}/${name}`, incBits, excBits);
      }
    } finally {
      pending.pop();
    }
  };
  visit(unit.rel, '', null, null);
  return out;
}

/** What the stat cache remembers of one entry: `<content hex or ''>|<xattrs JSON or ''>` (a bare hex: xattrs unknown). */
interface Known {
  content?: string;
  xattrs?: Record<string, string> | null;
}

class Reader {
  bytesRead = 0;
  filesHashed = 0;
  private readonly buf = Buffer.allocUnsafe(1024 * 1024);
  private readonly settledBefore = Date.now() - RACY_MS;

  constructor(private readonly cache: StatCache | undefined) {}

  /** Whether a stat-cache entry for this stat may be stored (its times are not racy). */
  private settled(d: { mtimeMs: number; statKey: string }): boolean {
    const ctime = Number(d.statKey.slice(d.statKey.lastIndexOf(':') + 1));
    return d.mtimeMs < this.settledBefore && ctime < this.settledBefore;
  }

  get(key: string): string | undefined {
    return this.cache?.get(key);
  }

  set(key: string, value: string, d: { mtimeMs: number; statKey: string }): void {
    if (this.cache && this.settled(d)) this.cache.set(key, value);
  }

  known(d: Draft): Known {
    const raw = this.cache?.get(d.statKey);
    if (raw === undefined) return {};
    const bar = raw.indexOf('|');
    if (bar < 0) return /^[0-9a-f]{64}$/.test(raw) ? { content: raw } : {};
    const content = raw.slice(0, bar);
    const x = raw.slice(bar + 1);
    return { ...(content ? { content } : {}), xattrs: x === '' ? null : (JSON.parse(x) as Record<string, string>) };
  }

  remember(d: Draft): void {
    if (d.type === 'file' && !d.digest) return;
    this.set(d.statKey, `${d.digest ?? ''}|${d.xattrs ? JSON.stringify(d.xattrs) : ''}`, d);
  }

  content(abs: string, d: Draft): string {
    const h = createHash('sha256');
    const fd = openSync(abs, 'r');
    try {
      // up to the size that was stat'ed (the size the stat key records); the holes of a sparse file are hashed as
      // the zeros they are, without reading them
      const sparse = d.size >= SPARSE_CHECK && hasHoles(fstatSync(fd));
      const extents: Extent[] = sparse ? dataExtents(abs, d.size) : [[0, d.size]];
      let total = 0;
      let short = false;
      const zeros = (n: number): void => {
        for (let left = n; left > 0; left -= ZEROS.length) h.update(left >= ZEROS.length ? ZEROS : ZEROS.subarray(0, left));
      };
      for (const [start, length] of extents) {
        if (start > total) zeros(Math.min(start, d.size) - total);
        total = Math.max(total, Math.min(start, d.size));
        const end = Math.min(start + length, d.size);
        while (total < end) {
          const n = readSync(fd, this.buf, 0, Math.min(this.buf.length, end - total), total);
          if (n === 0) break;
          h.update(n === this.buf.length ? this.buf : this.buf.subarray(0, n));
          total += n;
          this.bytesRead += n;
        }
        if (total < end) {
          short = true;
          break;
        }
      }
      if (sparse && !short && total < d.size) zeros(d.size - total);
    } finally {
      closeSync(fd);
    }
    this.filesHashed++;
    return h.digest('hex');
  }
}

/** Fill in digests, hardlink groups and xattrs of one unit's drafts. */
function complete(root: string, drafts: Draft[], reader: Reader, xattrs: boolean): void {
  const firstByInode = new Map<string, string>();
  const missing: Draft[] = [];
  const dirty: Draft[] = [];
  for (const d of drafts) {
    const known = reader.known(d);
    if (d.type === 'file') {
      if (known.content) d.digest = known.content;
      else {
        d.digest = reader.content(absPath(root, d.src), d);
        dirty.push(d);
      }
      const first = firstByInode.get(d.ino!);
      if (first === undefined) firstByInode.set(d.ino!, d.rel);
      else d.hardlink = first;
    }
    if (!xattrs) continue;
    if (known.xattrs === undefined) missing.push(d);
    else if (known.xattrs !== null) d.xattrs = known.xattrs;
  }
  if (missing.length > 0) {
    const read = readXattrsOf(missing.map((d) => absPath(root, d.src)));
    for (const d of missing) {
      const attrs = read.get(absPath(root, d.src));
      if (attrs) d.xattrs = Object.fromEntries(Object.entries(attrs).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
    }
  }
  if (!xattrs) return;
  for (const d of new Set([...dirty, ...missing])) reader.remember(d);
}

function freeze(d: Draft): SourceEntry {
  delete d.ino;
  return Object.freeze(d);
}

/** The key line of one entry: everything that reaches the image, never times or inode numbers. */
function keyLine(e: SourceEntry, keepOwnership: boolean): string {
  const value = e.digest ?? (e.linkTarget !== undefined ? JSON.stringify(e.linkTarget) : e.rdev !== undefined ? String(e.rdev) : '-');
  const own = keepOwnership ? `${e.uid}:${e.gid}` : '-';
  const link = e.hardlink !== undefined ? JSON.stringify(e.hardlink) : '-';
  const x = e.xattrs ? JSON.stringify(e.xattrs) : '-';
  return `${JSON.stringify(e.rel)} ${e.type} ${e.perm.toString(8)} ${own} ${value} ${link} ${x} ${e.lazy ? 'lazy' : '-'}`;
}

/**
 * Resolve a COPY/ADD step's sources under `root` into a frozen list of entries and the digest the cache key uses.
 * Throws ERR_KILN_CONTEXT_NOT_FOUND for a missing source, ERR_KILN_COPY_OPTION for a bad pattern,
 * ERR_KILN_CONTEXT_NAME for a file name that is not UTF-8. Sockets are skipped (Docker does not send them).
 *
 * @example
 * const r = await resolveSources({ root: contextDir, sources: ['src/', '*.json'], isIgnored });
 * r.digest; // the content of exactly what the COPY writes
 */
export async function resolveSources(opts: ResolveSourcesOptions): Promise<ResolvedSources> {
  opts.signal?.throwIfAborted();
  const root = path.resolve(opts.root);
  const watched = opts.watch ? await opts.watch.open(root, opts.signal ? { signal: opts.signal } : {}) : undefined;
  const key = watched ? memoKey(opts) : undefined;
  const tree = new SourceTree({
    root,
    ...(opts.isIgnored ? { isIgnored: opts.isIgnored } : {}),
    ...(opts.ignoreHasExceptions !== undefined ? { hasExceptions: opts.ignoreHasExceptions } : {}),
    ...(watched ? { reads: watched } : {}),
  });
  if (watched && key !== undefined) {
    const recalled = watched.recall(key);
    if (recalled) return Object.freeze({ ...recalled, bytesRead: 0, filesHashed: 0, recalled: true, patched: 0 });
    const last = watched.recallChanged(key);
    const lines = last && keyLinesOf.get(last.value);
    const patched = last && lines ? patchSources(opts, tree, { result: last.value, lines, changed: last.changed }) : undefined;
    if (patched) {
      watched.keep(key, patched);
      return patched;
    }
  }
  const r = await walkSources(opts, root, tree, key !== undefined);
  if (watched && key !== undefined) watched.keep(key, r);
  return r;
}

/** The key lines of a kept result, per unit (its header first): a patch rehashes them with only changed lines new. */
const keyLinesOf = new WeakMap<ResolvedSources, readonly (readonly string[])[]>();

function digestOf(keepOwnership: boolean, lines: readonly (readonly string[])[]): string {
  const hash = createHash('sha256').update(`${FORMAT}\nownership=${keepOwnership ? 1 : 0}\n`);
  // one update per unit: 20,000 small updates cost more than the hashing
  for (const unit of lines) hash.update(`${unit.join('\n')}\n`);
  return `sha256:${hash.digest('hex')}`;
}

/**
 * A watched root's last result with the changed paths read again, when that is all that can differ: only files,
 * links and special files whose type and link count stayed (a directory, an archive or a new hard link: undefined,
 * and the tree is walked through the memo).
 */
function patchSources(
  opts: ResolveSourcesOptions,
  tree: SourceTree,
  last: { result: ResolvedSources; lines: readonly (readonly string[])[]; changed: ReadonlySet<string> },
): ResolvedSources | undefined {
  const keepOwnership = opts.keepOwnership ?? false;
  const reader = new Reader(opts.statCache);
  const units: SourceUnit[] = [];
  const lines: (readonly string[])[] = [];
  let patched = 0;
  for (let ui = 0; ui < last.result.units.length; ui++) {
    const u = last.result.units[ui]!;
    const hit: number[] = [];
    for (let i = 0; i < u.entries.length; i++) if (last.changed.has(u.entries[i]!.src)) hit.push(i);
    if (hit.length === 0) {
      units.push(u);
      lines.push(last.lines[ui]!);
      continue;
    }
    if (u.archive) return undefined;
    const drafts: Draft[] = [];
    for (const i of hit) {
      const e = u.entries[i]!;
      if (e.type === 'dir' || e.hardlink !== undefined) return undefined;
      const st = tree.lstat(e.src);
      if (!st || entryType(st) !== e.type || (e.type === 'file' && st.nlink > 1)) return undefined;
      drafts.push(makeDraft(tree, e.src, e.rel, st, e.type));
    }
    complete(last.result.root, drafts, reader, opts.xattrs ?? true);
    if (drafts.some((d) => d.hardlink !== undefined)) return undefined;
    const entries = u.entries.slice();
    const unitLines = last.lines[ui]!.slice();
    hit.forEach((i, j) => {
      entries[i] = freeze(drafts[j]!);
      unitLines[i + 1] = keyLine(entries[i]!, keepOwnership);
    });
    patched += hit.length;
    units.push(Object.freeze({ ...u, entries: Object.freeze(entries) }));
    lines.push(unitLines);
  }
  const r: ResolvedSources = Object.freeze({
    ...last.result,
    units: Object.freeze(units),
    digest: digestOf(keepOwnership, lines),
    bytesRead: reader.bytesRead,
    filesHashed: reader.filesHashed,
    recalled: false,
    patched,
  });
  keyLinesOf.set(r, lines);
  return r;
}

/** What a whole result depends on besides the tree; undefined when the ignore rules are not named. */
function memoKey(opts: ResolveSourcesOptions): string | undefined {
  if (opts.isIgnored && opts.ignoreKey === undefined) return undefined;
  return JSON.stringify([
    opts.sources, opts.inlineCount ?? 0, opts.isIgnored ? opts.ignoreKey : null, opts.ignoreHasExceptions ?? null, opts.excludes ?? [],
    opts.parents ?? false, opts.followSourceSymlinks ?? true, opts.keepOwnership ?? false, opts.xattrs ?? true, opts.archiveDigest !== undefined, opts.command ?? '',
  ]);
}

async function walkSources(opts: ResolveSourcesOptions, root: string, tree: SourceTree, keepLines: boolean): Promise<ResolvedSources> {
  const follow = opts.followSourceSymlinks ?? true;
  const parents = opts.parents ?? false;
  const exclude = opts.excludes && opts.excludes.length > 0 ? compilePatterns(opts.excludes, '--exclude') : undefined;
  const keepOwnership = opts.keepOwnership ?? false;
  const reader = new Reader(opts.statCache);
  const found: Unit[] = [];
  for (const word of opts.sources) found.push(...expandSource(tree, word, { parents, follow }));
  const nothingMatched = found.length === 0 && (opts.inlineCount ?? 0) === 0 && !opts.sources.some((w) => searchesSubdir(w, parents));

  const lines: string[][] = [];
  const units: SourceUnit[] = [];
  let entryCount = 0;
  for (const u of found) {
    opts.signal?.throwIfAborted();
    const drafts = walkUnit(tree, u, exclude, opts.signal);
    let archive: { digest: string } | undefined;
    if (opts.archiveDigest && drafts.length === 1 && drafts[0]!.type === 'file') {
      const d = drafts[0]!;
      const cached = reader.get(`a|${d.statKey}`);
      const digest = cached !== undefined ? cached : ((await opts.archiveDigest(absPath(root, d.src))) ?? '');
      if (cached === undefined) reader.set(`a|${d.statKey}`, digest, d);
      if (digest !== '') archive = { digest };
    }
    if (!archive) complete(root, drafts, reader, opts.xattrs ?? true);
    const entries = drafts.map(freeze);
    entryCount += entries.length;
    const unitLines = [`unit ${JSON.stringify([u.word, u.matched])}`];
    if (archive) unitLines.push(`archive ${archive.digest}`);
    else for (const e of entries) unitLines.push(keyLine(e, keepOwnership));
    lines.push(unitLines);
    units.push(Object.freeze({ word: u.word, matched: u.matched, ...(archive ? { archive } : {}), entries: Object.freeze(entries) }));
  }
  const r: ResolvedSources = Object.freeze({
    root,
    units: Object.freeze(units),
    nothingMatched,
    digest: digestOf(keepOwnership, lines),
    entryCount,
    bytesRead: reader.bytesRead,
    filesHashed: reader.filesHashed,
    recalled: false,
    patched: 0,
  });
  if (keepLines) keyLinesOf.set(r, lines);
  return r;
}

/** Re-export for the copier: clean a path as Go's path.Clean. */
export { cleanPath };
