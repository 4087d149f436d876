import { createHash, type Hash } from 'node:crypto';
import { closeSync, lstatSync, openSync, readdirSync, readlinkSync, readSync, type Stats } from 'node:fs';
import path from 'node:path';
import { BuildError } from '../errors/index.js';
import type { Digest } from '../oci/index.js';
import { compileComponentGlob, hasWildcards } from './glob.js';
import { compileMatcher, compiledOf, type CompiledMatcher, type PatternMatcher } from './pattern-matcher.js';
import { cleanPath, compareNames, joinRel } from './path-utils.js';
import { resolveRel } from './resolve.js';
import { keepsFile, startFrame, walkBelow, type WalkLayer } from './walk-engine.js';

/** Maps a stat key (dev, ino, size, mtime, ctime) to the sha256 hex of the file's content. */
export interface StatCache {
  get(key: string): string | undefined;
  set(key: string, contentDigest: string): void;
}

/** A StatCache kept in memory (a persistent one can implement the same two methods). */
export function createMemoryStatCache(): StatCache {
  const map = new Map<string, string>();
  return { get: (k) => map.get(k), set: (k, v) => void map.set(k, v) };
}

/** The content checksum of what a COPY reads. */
export interface ChecksumResult {
  digest: Digest;
  /** per-path record for explaining misses */
  files: Array<{ path: string; digest: string; mode: number; uid?: number; gid?: number }>;
  bytesRead: number;
  filesHashed: number;
}

export interface SourceOptions {
  /** Root the sources are relative to (the build context, or a stage's root). */
  dir: string;
  /** COPY source words; wildcards per path component (Go filepath.Match); a leading '/' means the root. */
  sources: string[];
  /** .dockerignore matcher; ignored paths are invisible everywhere. */
  ignore?: PatternMatcher;
}

export interface ChecksumOptions extends SourceOptions {
  statCache?: StatCache;
  /** Hash uid/gid too (only when the COPY keeps ownership, i.e. no --chown). */
  includeOwnership?: boolean;
  /** Follow a source that is itself a symlink (COPY does); links inside copied directories stay links. */
  followSymlinks?: boolean;
  /** COPY --exclude patterns, matched against paths relative to each matched source. */
  excludes?: string[];
  /** A wildcard source that matches nothing adds nothing instead of throwing (the copy itself decides). */
  allowEmptyWildcards?: boolean;
  signal?: AbortSignal;
}

const FORMAT = 'kiln.context-checksum.v1';
/** Files changed this recently are not put in the stat cache: file times tick coarsely (jiffies). */
const RACY_MS = 50;
const SMALL = 64 * 1024;
const smallBuf = Buffer.allocUnsafe(SMALL);
let bigBuf: Buffer | null = null;

interface Match {
  /** Path as the source names it (relative to dir, '.' for the root). */
  logical: string;
  /** Real path relative to dir, parents resolved, last component not followed. */
  real: string;
}

function isMissing(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException).code;
  return code === 'ENOENT' || code === 'ENOTDIR';
}

function lstatOrNull(abs: string): Stats | null {
  try {
    return lstatSync(abs);
  } catch (err) {
    if (isMissing(err)) return null;
    throw err;
  }
}

function absOf(root: string, rel: string): string {
  return rel === '.' ? root : `${root}/${rel}`;
}

/** Clean a source word; `..` above the root is clamped to the root, as Docker does for COPY sources. */
function cleanSource(word: string): string {
  const c = cleanPath(`/${word}`);
  return c === '/' ? '.' : c.slice(1);
}

function ignoreLayer(ignore: CompiledMatcher | null): WalkLayer[] {
  return ignore ? [{ include: null, exclude: ignore, strip: '' }] : [];
}

/** Does the (filtered) context contain this real path? A dropped directory counts if it holds kept entries. */
function isVisible(root: string, real: string, isDir: boolean, layers: WalkLayer[]): boolean {
  if (layers.length === 0 || real === '.') return true;
  if (!isDir) return keepsFile(layers, real);
  const frame = startFrame({ layers, rel: real, abs: absOf(root, real) });
  if (!frame) return false;
  if (frame.yielded) return true;
  const found = Symbol('found');
  try {
    walkBelow(frame, { layers, visit: () => { throw found; } });
  } catch (err) {
    if (err === found) return true;
    throw err;
  }
  return false;
}

function listDir(root: string, logical: string): string[] {
  let real: string;
  try {
    real = resolveRel(root, logical, true);
  } catch {
    return [];
  }
  try {
    return readdirSync(absOf(root, real)).sort(compareNames);
  } catch (err) {
    if (isMissing(err)) return [];
    throw err;
  }
}

function expandWord(root: string, word: string): string[] {
  const cleaned = cleanSource(word);
  if (cleaned === '.') return ['.'];
  let cands = ['.'];
  for (const comp of cleaned.split('/')) {
    const next: string[] = [];
    if (hasWildcards(comp)) {
      let match: (name: string) => boolean;
      try {
        match = compileComponentGlob(comp);
      } catch (err) {
        throw new BuildError('ERR_KILN_CONTEXT_NOT_FOUND', `invalid wildcard in source ${JSON.stringify(word)}: ${(err as Error).message}`, {
          cause: err,
          details: { source: word },
        });
      }
      for (const c of cands) for (const name of listDir(root, c)) if (match(name)) next.push(joinRel(c, name));
    } else {
      for (const c of cands) next.push(joinRel(c, comp));
    }
    cands = next;
  }
  return cands;
}

function findMatches(root: string, word: string, layers: WalkLayer[], allowEmptyWildcard = false): Match[] {
  const out: Match[] = [];
  for (const logical of expandWord(root, word)) {
    const real = resolveRel(root, logical, false);
    const st = real === '.' ? lstatSync(root) : lstatOrNull(absOf(root, real));
    if (!st) continue;
    if (!isVisible(root, real, st.isDirectory(), layers)) continue;
    out.push({ logical, real });
  }
  if (out.length === 0) {
    if (allowEmptyWildcard && hasWildcards(word)) return out;
    const what = hasWildcards(word) ? 'matches no file' : 'file not found';
    throw new BuildError('ERR_KILN_CONTEXT_NOT_FOUND', `COPY source ${JSON.stringify(word)}: ${what} in the build context`, {
      details: { source: word },
    });
  }
  return out;
}

/**
 * Expand COPY source words to the relative paths they name: wildcards per component (Go filepath.Match),
 * a leading '/' meaning the root, `..` clamped at the root, ignored paths invisible. A word with no match
 * throws ERR_KILN_CONTEXT_NOT_FOUND naming it.
 *
 * @example
 * await matchSources({ dir: ctx, sources: ['src/*.ts'] }); // [{ source: 'src/*.ts', paths: ['src/a.ts', ...] }]
 */
export async function matchSources(opts: SourceOptions): Promise<Array<{ source: string; paths: string[] }>> {
  const root = path.resolve(opts.dir);
  const layers = ignoreLayer(opts.ignore ? compiledOf(opts.ignore) : null);
  return opts.sources.map((source) => ({ source, paths: findMatches(root, source, layers).map((m) => m.logical) }));
}

class Hasher {
  readonly total: Hash = createHash('sha256');
  readonly files: ChecksumResult['files'] = [];
  bytesRead = 0;
  filesHashed = 0;
  private readonly startMs = Date.now();

  constructor(private readonly opts: ChecksumOptions) {
    this.total.update(`${FORMAT}\nownership=${opts.includeOwnership ? 1 : 0}\n`);
  }

  /** Add one entry: `name` is how the COPY names it, `abs`/`st` what is read. */
  add(name: string, abs: string, st: Stats): void {
    const type = st.mode & 0o170000;
    const perm = (st.mode & 0o7777).toString(8);
    const own = this.opts.includeOwnership ? `${st.uid}:${st.gid}` : '-';
    let kind: string;
    let value: string;
    let digest = '';
    if (type === 0o100000) {
      kind = 'f';
      value = this.content(abs, st);
      digest = `sha256:${value}`;
    } else if (type === 0o120000) {
      const target = readlinkSync(abs);
      kind = 'l';
      value = JSON.stringify(target);
      digest = `sha256:${createHash('sha256').update(target).digest('hex')}`;
    } else {
      kind = type === 0o040000 ? 'd' : `o${type.toString(8)}`;
      value = type === 0o040000 ? '-' : String(st.rdev);
    }
    this.total.update(`${kind} ${perm} ${own} ${value} ${JSON.stringify(name)}\n`);
    const rec: ChecksumResult['files'][number] = { path: name, digest, mode: st.mode };
    if (this.opts.includeOwnership) {
      rec.uid = st.uid;
      rec.gid = st.gid;
    }
    this.files.push(rec);
  }

  private content(abs: string, st: Stats): string {
    const key = `${st.dev}:${st.ino}:${st.size}:${st.mtimeMs}:${st.ctimeMs}`;
    const cached = this.opts.statCache?.get(key);
    if (cached) return cached;
    const hex = this.readAndHash(abs, st.size);
    const settled = this.startMs - RACY_MS;
    if (this.opts.statCache && st.mtimeMs < settled && st.ctimeMs < settled) this.opts.statCache.set(key, hex);
    return hex;
  }

  private readAndHash(abs: string, size: number): string {
    const h = createHash('sha256');
    const buf = size < SMALL ? smallBuf : (bigBuf ??= Buffer.allocUnsafe(1024 * 1024));
    const fd = openSync(abs, 'r');
    try {
      // Read up to the size that was stat'ed (that is the size the stat-cache key records), then stop.
      let total = 0;
      while (total < size) {
        const n = readSync(fd, buf, 0, Math.min(buf.length, size - total), null);
        if (n === 0) break;
        h.update(n === buf.length ? buf : buf.subarray(0, n));
        total += n;
      }
      this.bytesRead += total;
    } finally {
      closeSync(fd);
    }
    this.filesHashed++;
    return h.digest('hex');
  }
}

/** Pick what a COPY of this match reads: the link itself, or (followSymlinks) its target inside the root. */
function selectTarget(root: string, m: Match, follow: boolean, layers: WalkLayer[]): { real: string; st: Stats } {
  const st = m.real === '.' ? lstatSync(root) : lstatSync(absOf(root, m.real));
  if (!follow || !st.isSymbolicLink()) return { real: m.real, st };
  try {
    const target = resolveRel(root, m.logical, true);
    const tst = target === '.' ? lstatSync(root) : lstatOrNull(absOf(root, target));
    if (tst && !tst.isSymbolicLink() && isVisible(root, target, tst.isDirectory(), layers)) return { real: target, st: tst };
  } catch (err) {
    if (!(err instanceof BuildError)) throw err;
  }
  return { real: m.real, st }; // dangling, escaping or ignored target: hash the link itself
}

function hashMatch(root: string, m: Match, hasher: Hasher, ctx: { opts: ChecksumOptions; ignore: CompiledMatcher | null; excludes: CompiledMatcher | null }): void {
  const ignoreLayers = ignoreLayer(ctx.ignore);
  const { real, st } = selectTarget(root, m, ctx.opts.followSymlinks ?? false, ignoreLayers);
  const abs = absOf(root, real);
  if (!st.isDirectory()) {
    hasher.add(m.logical, abs, st);
    return;
  }
  const layers: WalkLayer[] = [...ignoreLayers];
  if (ctx.excludes) layers.push({ include: null, exclude: ctx.excludes, strip: real === '.' ? '' : `${real}/` });
  const frame = startFrame({ layers, rel: real, abs });
  if (!frame) return;
  const rename = (rel: string): string => {
    if (rel === real) return m.logical;
    const sub = real === '.' ? rel : rel.slice(real.length + 1);
    return joinRel(m.logical, sub);
  };
  if (frame.yielded) hasher.add(m.logical, abs, st);
  walkBelow(frame, {
    layers,
    signal: ctx.opts.signal,
    visit: (item) => {
      const est = lstatOrNull(item.abs);
      if (est) hasher.add(rename(item.rel), item.abs, est);
    },
  });
}

/**
 * Digest exactly what a COPY of `sources` reads: for every matched path and everything below it, the path
 * (relative to `dir`), type, permission bits (with setuid/setgid/sticky), symlink target, file bytes, and
 * uid/gid only with `includeOwnership` — never times or inode numbers. Ignored paths are skipped; `excludes`
 * (COPY --exclude) apply below each matched source, never to the matched path itself (as fsutil's copy does).
 * A `statCache` keyed by (dev, ino, size, mtime, ctime) makes an unchanged rebuild read no file contents.
 * Sources that escape the root with `..` are clamped to the root; a source with no match throws
 * ERR_KILN_CONTEXT_NOT_FOUND; a symlinked parent directory that leads outside throws ERR_KILN_CONTEXT_ESCAPE.
 *
 * @example
 * const cache = createMemoryStatCache();
 * const { digest } = await checksumSources({ dir: ctx, sources: ['package.json', 'src/'], statCache: cache });
 */
export async function checksumSources(opts: ChecksumOptions): Promise<ChecksumResult> {
  opts.signal?.throwIfAborted();
  const root = path.resolve(opts.dir);
  const ignore = opts.ignore ? compiledOf(opts.ignore) : null;
  const excludes = opts.excludes && opts.excludes.length > 0 ? compileMatcher(opts.excludes) : null;
  const hasher = new Hasher(opts);
  for (const source of opts.sources) {
    const matches = findMatches(root, source, ignoreLayer(ignore), opts.allowEmptyWildcards);
    hasher.total.update(`source ${JSON.stringify(source)}\n`);
    for (const m of matches) {
      opts.signal?.throwIfAborted();
      hasher.total.update(`match ${JSON.stringify(m.logical)}\n`);
      hashMatch(root, m, hasher, { opts, ignore, excludes });
    }
  }
  return {
    digest: `sha256:${hasher.total.digest('hex')}`,
    files: hasher.files,
    bytesRead: hasher.bytesRead,
    filesHashed: hasher.filesHashed,
  };
}
