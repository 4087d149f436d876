import { createHash, type Hash } from 'node:crypto';
import { once } from 'node:events';
import fs from 'node:fs';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import type { Writable } from 'node:stream';
import zlib from 'node:zlib';
import { BuildError, isBuildError } from '../errors/index.js';
import { MediaType, type Digest } from '../oci/index.js';
import { BLOCK, END_OF_ARCHIVE, padding, prepareHeader, ustarInto, type TarHeader } from './tar-format.js';
import type { LayerInfo, WriteLayerOptions } from './types.js';
import { walkTree, type WalkEntry } from './walk.js';
import { ChunkedGzip, MEMBER_BYTES, type ChunkCacheOptions } from './gzip-chunks.js';
import { readXattrsOf, type XattrMap } from './xattr.js';
import { encodeSparseMap, scanSegments, type Segment } from './sparse.js';
import { dataExtents, hasHoles } from '../sparse/index.js';

/**
 * Level 1: on this kind of machine zlib level 1 runs ~60 MB/s against ~40 MB/s at 6, and the blobs it makes are
 * typically 5-15% larger. Layers are written on every RUN step but pushed far less often.
 */
export const DEFAULT_GZIP_LEVEL = 1;
const STAGING = 1 << 20;
const DIRECT = 256 * 1024;
const SMALL_FILE = 128 * 1024;
const BIG_READ = 1024 * 1024;
const OPAQUE_XATTR = 'trusted.overlay.opaque';
const WHITEOUT_PREFIX = '.wh.';
const OPAQUE_MARKER = '.wh..wh..opq';

/** Member size bounds (uncompressed) and how often a name is a cut point, for chunked gzip. */
const MEMBER_MIN = 256 * 1024;
const MEMBER_MAX = 2 * MEMBER_BYTES;
const CUT_EVERY = 256;

/** FNV-1a of a name's UTF-16 units: cheap and stable. */
function nameHash(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

/** Buffers tar bytes into ~1 MiB writes, hashes them (diffId) and feeds the compressor or the blob stream. */
class TarOutput {
  private staging = Buffer.allocUnsafe(STAGING);
  private used = 0;
  private readonly hash: Hash = createHash('sha256');
  size = 0;
  /** True when the last write asked us to wait for 'drain'. */
  blocked = false;
  readonly done: Promise<void>;
  private readonly target: Writable | undefined;
  private readonly chunks: ChunkedGzip | undefined;

  constructor(dest: Writable, gzipLevel: number | undefined, chunkCache?: ChunkCacheOptions | 'parallel') {
    if (gzipLevel !== undefined && chunkCache) {
      this.chunks = new ChunkedGzip(dest, gzipLevel, chunkCache === 'parallel' ? undefined : chunkCache);
      this.done = this.chunks.done;
    } else if (gzipLevel === undefined) {
      this.target = dest;
      this.done = once(dest, 'finish').then(() => undefined);
    } else {
      const gz = zlib.createGzip({ level: gzipLevel, chunkSize: 256 * 1024 });
      this.target = gz;
      this.done = pipeline(gz, dest);
    }
    this.done.catch(() => undefined);
  }

  /** Make room for n bytes (n ≤ 1 MiB) in the staging buffer; returns the buffer and offset to fill. */
  reserve(n: number): [Buffer, number] {
    if (this.used + n > STAGING) this.flush();
    const off = this.used;
    this.used += n;
    return [this.staging, off];
  }

  /** Write one entry's header (PAX first when needed). */
  header(h: TarHeader): void {
    // gzip members end at entry boundaries chosen by the entry's name (content-defined), so an edit early in the
    // tar does not shift every later member: unchanged runs of entries give the same members again
    if (this.chunks) {
      const n = this.chunks.size + this.used;
      if (n >= MEMBER_MAX || (n >= MEMBER_MIN && nameHash(h.path) % CUT_EVERY === 0)) {
        this.flush();
        this.chunks.cut();
      }
    }
    const { pax, ustar } = prepareHeader(h);
    if (pax) this.add(pax);
    const [buf, off] = this.reserve(BLOCK);
    ustarInto(buf, off, ustar);
  }

  add(buf: Buffer): void {
    if (buf.length >= DIRECT) {
      this.flush();
      this.send(buf);
      return;
    }
    if (this.used + buf.length > STAGING) this.flush();
    buf.copy(this.staging, this.used);
    this.used += buf.length;
  }

  private flush(): void {
    if (this.used === 0) return;
    const out = this.staging.subarray(0, this.used);
    this.staging = Buffer.allocUnsafe(STAGING);
    this.used = 0;
    this.send(out);
  }

  private send(buf: Buffer): void {
    this.hash.update(buf);
    this.size += buf.length;
    if (this.chunks) {
      // big file data: members also end every MEMBER_BYTES inside it
      if (buf.length >= DIRECT && this.chunks.size >= MEMBER_BYTES) this.chunks.cut();
      this.chunks.write(buf);
      this.blocked = this.chunks.blocked;
    } else if (!this.target!.write(buf)) this.blocked = true;
  }

  /** Wait for the compressor to catch up when it asked us to. */
  async drain(): Promise<void> {
    if (!this.blocked) return;
    this.blocked = false;
    if (this.chunks) await this.chunks.drain();
    else await Promise.race([once(this.target!, 'drain'), this.done]);
  }

  async finish(): Promise<{ diffId: Digest; size: number }> {
    this.add(END_OF_ARCHIVE);
    this.flush();
    if (this.chunks) await this.chunks.end();
    else this.target!.end();
    await this.done;
    return { diffId: `sha256:${this.hash.digest('hex')}` as Digest, size: this.size };
  }

  destroy(err: Error): void {
    if (this.chunks) this.chunks.destroy(err);
    else this.target!.destroy(err);
  }
}

function isWhiteoutDevice(st: fs.Stats): boolean {
  return st.isCharacterDevice() && st.rdev === 0;
}

function devNumbers(rdev: number): { devmajor: number; devminor: number } {
  const hi = Math.floor(rdev / 2 ** 32);
  const lo = rdev >>> 0;
  return {
    devmajor: ((lo >>> 8) & 0xfff) | ((hi & 0xfffff000) >>> 0),
    devminor: ((lo & 0xff) | ((lo >>> 12) & 0xfff00) | ((hi & 0xfff) << 20)) >>> 0,
  };
}

interface EmitContext {
  out: TarOutput;
  overlay: boolean;
  xattrs: XattrMap;
  clamp: (seconds: number) => number;
  links: Map<string, string>;
  entries: number;
  /** the layer's content identity: every entry's metadata and content digest, never its mtime */
  content: Hash;
  signal: AbortSignal | undefined;
}

/** Record one entry in the content identity: path, type, mode, owner, link target, device, xattrs, content digest. */
function recordContent(ctx: EmitContext, h: TarHeader, contentDigest = ''): void {
  const xattrs = (h.xattrs ?? []).map(([k, v]) => [k, v.toString('hex')]);
  const dev = h.devmajor !== undefined ? `${h.devmajor}:${h.devminor ?? 0}` : '';
  ctx.content.update(`${JSON.stringify([h.path, h.type, h.mode, h.uid, h.gid, h.linkname ?? '', dev, xattrs, contentDigest])}\n`);
}

/** xattrs that go into the tar: never overlayfs' private ones, never the host's SELinux label. */
function tarXattrs(ctx: EmitContext, e: WalkEntry): Array<[string, Buffer]> {
  const all = ctx.xattrs.get(e.abs);
  if (!all) return [];
  if (ctx.overlay) {
    for (const [k] of all) {
      if (k === 'trusted.overlay.redirect' || k === 'trusted.overlay.metacopy') {
        throw new BuildError('ERR_KILN_NOT_SUPPORTED', `${e.rel} carries ${k}: the overlay was mounted with redirect_dir or metacopy`, {
          hint: 'mount the overlay with redirect_dir=off,metacopy=off so an upperdir holds whole files',
        });
      }
    }
  }
  return all.filter(([k]) => !k.startsWith('trusted.overlay.') && k !== 'security.selinux').sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
}

function isOpaque(ctx: EmitContext, e: WalkEntry): boolean {
  if (!ctx.overlay) return false;
  const v = ctx.xattrs.get(e.abs)?.find(([k]) => k === OPAQUE_XATTR)?.[1];
  return v !== undefined && v.toString('latin1') === 'y';
}

function emit(ctx: EmitContext, h: TarHeader): void {
  ctx.out.header(h);
  ctx.entries++;
  if (h.type !== 'file') recordContent(ctx, h);
}

function changedError(e: WalkEntry): BuildError {
  return new BuildError('ERR_KILN_INTERNAL', `${e.rel} changed size while it was being archived`, {
    hint: 'nothing may write to a layer folder while kiln archives it',
  });
}

/** Read exactly `buf.length` bytes at `pos` (or from the current offset when pos is null). */
function readFully(fd: number, buf: Buffer, pos: number | null, e: WalkEntry): void {
  let got = 0;
  while (got < buf.length) {
    const n = fs.readSync(fd, buf, got, buf.length - got, pos === null ? null : pos + got);
    if (n === 0) throw changedError(e);
    got += n;
  }
}

/** A small file's bytes and padding, read straight into the staging buffer. Returns their sha256. */
function readSmallFile(ctx: EmitContext, e: WalkEntry): string {
  const size = e.st.size;
  const digest = createHash('sha256');
  if (size === 0) return digest.digest('hex');
  const padded = size + padding(size).length;
  const fd = fs.openSync(e.abs, 'r');
  try {
    const [buf, off] = ctx.out.reserve(padded);
    readFully(fd, buf.subarray(off, off + size), null, e);
    buf.fill(0, off + size, off + padded);
    digest.update(buf.subarray(off, off + size));
    return digest.digest('hex');
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * Stream `length` bytes at `pos` of a file into the tar in 1 MiB reads, waiting for the compressor whenever it asks
 * (so a file of any size costs a few MiB of memory).
 */
async function streamRange(ctx: EmitContext, e: WalkEntry, fd: number, pos: number, length: number, digest: Hash): Promise<void> {
  let left = length;
  let at = pos;
  while (left > 0) {
    const buf = Buffer.allocUnsafe(Math.min(left, BIG_READ));
    readFully(fd, buf, at, e);
    digest.update(buf);
    ctx.out.add(buf);
    left -= buf.length;
    at += buf.length;
    if (ctx.out.blocked) {
      ctx.signal?.throwIfAborted();
      await ctx.out.drain();
    }
  }
}

/** A big file: header, then its bytes streamed with back-pressure, then the padding. */
async function emitBigFile(ctx: EmitContext, e: WalkEntry, h: TarHeader, fd: number): Promise<void> {
  emit(ctx, h);
  const digest = createHash('sha256');
  await streamRange(ctx, e, fd, 0, h.size, digest);
  if (fs.fstatSync(fd).size !== h.size) throw changedError(e);
  ctx.out.add(padding(h.size));
  recordContent(ctx, h, digest.digest('hex'));
}

/** `dir/GNUSparseFile.0/name`: where readers that do not know sparse files put the entry (GNU tar's naming). */
function sparseStandIn(rel: string): string {
  const i = rel.lastIndexOf('/');
  return i < 0 ? `GNUSparseFile.0/${rel}` : `${rel.slice(0, i)}/GNUSparseFile.0/${rel.slice(i + 1)}`;
}

/**
 * A file with holes: found by reading it once for all-zero blocks, then written as GNU sparse 1.0 (PAX keys, then
 * the map and the data segments), so the holes stay holes and cost nothing in the layer. A file whose holes hold
 * no whole zero block is written as an ordinary file.
 */
async function emitFile(ctx: EmitContext, e: WalkEntry, h: TarHeader): Promise<void> {
  const fd = fs.openSync(e.abs, 'r');
  try {
    const size = h.size;
    if (!hasHoles(e.st)) return await emitBigFile(ctx, e, h, fd);
    let segs: Segment[];
    try {
      segs = await scanSegments(fd, dataExtents(e.abs, size), ctx.signal);
    } catch (err) {
      if (isBuildError(err) || (err as Error).name === 'AbortError') throw err;
      throw changedError(e);
    }
    const dataBytes = segs.reduce((a, [, l]) => a + l, 0);
    if (dataBytes === size) return await emitBigFile(ctx, e, h, fd);
    const map = encodeSparseMap(segs, size);
    const stored = map.length + dataBytes;
    const pax: Array<[string, string]> = [
      ['GNU.sparse.major', '1'],
      ['GNU.sparse.minor', '0'],
      ['GNU.sparse.name', e.rel],
      ['GNU.sparse.realsize', String(size)],
    ];
    emit(ctx, { ...h, path: sparseStandIn(e.rel), size: stored, extraPax: pax });
    ctx.out.add(map);
    const digest = createHash('sha256').update(`sparse ${size}\n`).update(map);
    for (const [off, len] of segs) await streamRange(ctx, e, fd, off, len, digest);
    if (fs.fstatSync(fd).size !== size) throw changedError(e);
    ctx.out.add(padding(stored));
    recordContent(ctx, h, digest.digest('hex'));
  } finally {
    fs.closeSync(fd);
  }
}

function emitEntry(ctx: EmitContext, e: WalkEntry): Promise<void> | undefined {
  const st = e.st;
  const base = {
    mode: st.mode & 0o7777,
    uid: st.uid,
    gid: st.gid,
    size: 0,
    mtime: ctx.clamp(Math.floor(st.mtimeMs / 1000)),
  };
  if (ctx.overlay && isWhiteoutDevice(st)) {
    const dir = path.posix.dirname(e.rel);
    const name = `${dir === '.' ? '' : `${dir}/`}${WHITEOUT_PREFIX}${path.posix.basename(e.rel)}`;
    emit(ctx, { ...base, path: name, type: 'file', mode: 0o600 });
    return;
  }
  if (st.isSocket()) return;
  const xattrs = tarXattrs(ctx, e);
  if (st.isDirectory()) {
    emit(ctx, { ...base, path: `${e.rel}/`, type: 'directory', xattrs });
    if (isOpaque(ctx, e)) emit(ctx, { ...base, path: `${e.rel}/${OPAQUE_MARKER}`, type: 'file', mode: 0o600 });
    return;
  }
  if (st.nlink > 1) {
    const key = `${st.dev}:${st.ino}`;
    const first = ctx.links.get(key);
    if (first !== undefined) {
      emit(ctx, { ...base, path: e.rel, type: 'link', linkname: first });
      return;
    }
    ctx.links.set(key, e.rel);
  }
  if (st.isFile()) {
    const h: TarHeader = { ...base, path: e.rel, type: 'file', size: st.size, xattrs };
    if (st.size + padding(st.size).length > SMALL_FILE) return emitFile(ctx, e, h);
    emit(ctx, h);
    recordContent(ctx, h, readSmallFile(ctx, e));
  } else if (st.isSymbolicLink()) {
    emit(ctx, { ...base, path: e.rel, type: 'symlink', linkname: fs.readlinkSync(e.abs), xattrs });
  } else if (st.isCharacterDevice() || st.isBlockDevice()) {
    const type = st.isCharacterDevice() ? 'character-device' : 'block-device';
    emit(ctx, { ...base, path: e.rel, type, ...devNumbers(st.rdev), xattrs });
  } else if (st.isFIFO()) {
    emit(ctx, { ...base, path: e.rel, type: 'fifo', xattrs });
  }
  return undefined;
}

/** `du`-style bytes on disk of a walked tree and its root: st_blocks × 512, each (dev, inode) once. */
function diskBytesOf(rootSt: fs.Stats, tree: WalkEntry[]): number {
  const seen = new Set<string>();
  let total = rootSt.blocks * 512;
  for (const { st } of tree) {
    if (st.nlink > 1 && !st.isDirectory()) {
      const key = `${st.dev}:${st.ino}`;
      if (seen.has(key)) continue;
      seen.add(key);
    }
    total += st.blocks * 512;
  }
  return total;
}

/**
 * Tar a folder (an overlay upperdir, or any folder) as an OCI layer, gzip it, and write it into the blob store.
 *
 * Output is deterministic: entries depth-first with each folder's names sorted by bytes (parents before children,
 * an opaque marker right after its folder), uname/gname empty, no atime/ctime, PAX only where ustar cannot hold a
 * value. The same tree with the same mtimes gives the same tar and the same gzip bytes.
 *
 * @example
 * const store = await createLocalStore({ root: '/var/lib/kiln/content' });
 * const layer = await writeLayer({ dir: upperdir, ingester: store, sourceDateEpoch: 0 });
 * // layer.digest goes into the manifest, layer.diffId into the config's rootfs.diff_ids
 */
export async function writeLayer(opts: WriteLayerOptions): Promise<LayerInfo> {
  const root = path.resolve(opts.dir);
  let st: fs.Stats;
  try {
    st = fs.statSync(root);
  } catch (cause) {
    throw new BuildError('ERR_KILN_INTERNAL', `layer folder ${root} does not exist`, { cause });
  }
  if (!st.isDirectory()) throw new BuildError('ERR_KILN_INTERNAL', `layer folder ${root} is not a folder`);
  opts.signal?.throwIfAborted();
  const overlay = opts.overlay ?? true;
  const compression = opts.compression ?? 'gzip';
  const level = opts.gzipLevel ?? DEFAULT_GZIP_LEVEL;
  if (compression === 'gzip' && !(Number.isInteger(level) && level >= 0 && level <= 9)) {
    throw new Error(`gzipLevel must be an integer 0-9, got ${level}`);
  }
  const epoch = opts.sourceDateEpoch;
  const clamp = epoch === undefined ? (s: number) => s : (s: number) => Math.min(s, epoch);

  const sortKey = overlay
    ? (name: string, s: fs.Stats) => (isWhiteoutDevice(s) ? `${WHITEOUT_PREFIX}${name}` : name)
    : undefined;
  const tree = walkTree(root, { signal: opts.signal, sortKey });
  const xattrs = readXattrsOf([root, ...tree.map((e) => e.abs)], opts.signal);

  const writer = await opts.ingester.writer();
  const out = new TarOutput(writer.stream, compression === 'gzip' ? level : undefined, opts.chunkCache ?? (opts.parallelGzip ? 'parallel' : undefined));
  const ctx: EmitContext = { out, overlay, xattrs, clamp, links: new Map(), entries: 0, content: createHash('sha256'), signal: opts.signal };
  try {
    for (let i = 0; i < tree.length; i++) {
      if ((i & 255) === 0) opts.signal?.throwIfAborted();
      const big = emitEntry(ctx, tree[i]);
      if (big) await big;
      if (out.blocked) await out.drain();
    }
    opts.signal?.throwIfAborted();
    const tar = await out.finish();
    const blob = await writer.commit();
    return {
      digest: blob.digest,
      diffId: tar.diffId,
      size: blob.size,
      uncompressedSize: tar.size,
      mediaType: compression === 'gzip' ? MediaType.OciLayerGzip : MediaType.OciLayer,
      entries: ctx.entries,
      contentId: `sha256:${ctx.content.digest('hex')}`,
      diskBytes: diskBytesOf(st, tree),
    };
  } catch (err) {
    out.destroy(err as Error);
    await writer.abort().catch(() => undefined);
    throw err;
  }
}
