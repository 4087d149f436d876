/**
 * ADD's local-archive handling: detect a tar (plain, gzip, bzip2, xz or zstd) by content, and extract it the way
 * Docker's chrootarchive.Untar does: paths resolve inside the destination directory (as in a chroot), existing
 * entries are replaced except directory-over-directory (merged), owners come from the archive unless --chown,
 * implied parent directories are created 0755 root-owned, directory mtimes are set last.
 * @internal
 */
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import { spawn, spawnSync } from 'node:child_process';
import { Readable } from 'node:stream';
import tarStream from 'tar-stream';
import { BuildError } from '../../errors/index.js';
import { createHash } from 'node:crypto';
import { absPath, cleanPath, hostTree, lstatOrUndefined, resolveInRoot } from '../../context/index.js';
import { hexOfString, type XattrMap, type XattrWriter } from './xattrs.js';
import type { Owner } from './types.js';

type Compression = 'none' | 'gzip' | 'bzip2' | 'xz' | 'zstd';

const TOOLS: Record<Exclude<Compression, 'none' | 'gzip'>, string> = { bzip2: 'bzip2', xz: 'xz', zstd: 'zstd' };

function detectCompression(head: Buffer): Compression {
  if (head.length >= 3 && head[0] === 0x1f && head[1] === 0x8b && head[2] === 0x08) return 'gzip';
  if (head.length >= 3 && head.subarray(0, 3).toString('latin1') === 'BZh') return 'bzip2';
  if (head.length >= 6 && head.subarray(0, 6).equals(Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]))) return 'xz';
  if (head.length >= 4 && head.readUInt32LE(0) === 0xfd2fb528) return 'zstd';
  return 'none';
}

function readHead(file: string, n: number): Buffer {
  const fd = fs.openSync(file, 'r');
  try {
    const buf = Buffer.alloc(n);
    const got = fs.readSync(fd, buf, 0, n, 0);
    return buf.subarray(0, got);
  } finally {
    fs.closeSync(fd);
  }
}

/** Decompressed content stream of `file`. */
function openDecompressed(file: string, compression: Compression): { stream: Readable; done: () => void } {
  if (compression === 'none') {
    const s = fs.createReadStream(file);
    return { stream: s, done: () => s.destroy() };
  }
  if (compression === 'gzip') {
    const src = fs.createReadStream(file);
    const gunzip = zlib.createGunzip();
    src.on('error', (e) => gunzip.destroy(e));
    src.pipe(gunzip);
    return { stream: gunzip, done: () => { src.destroy(); gunzip.destroy(); } };
  }
  const fd = fs.openSync(file, 'r');
  const child = spawn(TOOLS[compression], ['-dc'], { stdio: [fd, 'pipe', 'pipe'] });
  fs.closeSync(fd);
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => { stderr += d.toString(); });
  child.on('error', (e) => child.stdout!.destroy(e));
  child.on('close', (code, sig) => {
    if (code !== 0 && sig === null) child.stdout!.destroy(new Error(`${TOOLS[compression]}: ${stderr.trim() || `exit ${code}`}`));
  });
  return { stream: child.stdout!, done: () => { child.stdout!.destroy(); if (child.exitCode === null) child.kill(); } };
}

async function readDecompressedHead(file: string, compression: Compression, n: number): Promise<Buffer> {
  if (compression === 'none') return readHead(file, n);
  if (compression !== 'gzip') {
    const fd = fs.openSync(file, 'r');
    try {
      const res = spawnSync('sh', ['-c', `${TOOLS[compression]} -dc 2>/dev/null | head -c ${n}`], {
        stdio: [fd, 'pipe', 'ignore'],
      });
      return res.stdout ?? Buffer.alloc(0);
    } finally {
      fs.closeSync(fd);
    }
  }
  const { stream, done } = openDecompressed(file, compression);
  const chunks: Buffer[] = [];
  let total = 0;
  try {
    for await (const chunk of stream) {
      chunks.push(chunk as Buffer);
      total += (chunk as Buffer).length;
      if (total >= n) break;
    }
  } catch {
    // a corrupt stream is not an archive
  } finally {
    done();
  }
  return Buffer.concat(chunks).subarray(0, n);
}

/** Go's tar reader accepts a header whose checksum matches as an unsigned or a signed byte sum. */
function isTarHeader(block: Buffer): boolean {
  if (block.length < 512) return false;
  if (block.every((b) => b === 0)) return false;
  const field = block.subarray(148, 156).toString('latin1').replace(/[\0 ]+$/g, '').trim();
  if (!/^[0-7]+$/.test(field)) return false;
  const want = parseInt(field, 8);
  let unsigned = 0;
  let signed = 0;
  for (let i = 0; i < 512; i++) {
    const b = i >= 148 && i < 156 ? 0x20 : block[i];
    unsigned += b;
    signed += b > 127 ? b - 256 : b;
  }
  return want === unsigned || want === signed;
}

/** True when `file` is a regular file holding a tar archive (possibly compressed), judged by content only. */
export async function isArchive(file: string): Promise<boolean> {
  const st = lstatOrUndefined(file);
  if (!st || !st.isFile()) return false;
  const compression = detectCompression(readHead(file, 6));
  const head = await readDecompressedHead(file, compression, 512);
  return isTarHeader(head);
}

/**
 * The identity of what extracting `file` writes, or null when it is not an archive: every entry's name, type, mode,
 * owner, link target, xattrs and content digest from the decompressed stream, never its times or the compression. So
 * re-compressing the same archive keys the same, and ADD can be cached on content.
 */
export async function archiveContentDigest(file: string): Promise<string | null> {
  if (!(await isArchive(file))) return null;
  const compression = detectCompression(readHead(file, 6));
  const { stream, done } = openDecompressed(file, compression);
  const extract = tarStream.extract({ allowUnknownFormat: true } as Parameters<typeof tarStream.extract>[0]);
  stream.on('error', (e) => extract.destroy(e));
  stream.pipe(extract as unknown as NodeJS.WritableStream);
  const total = createHash('sha256').update('kiln.archive-content.v1\n');
  try {
    for await (const entry of extract) {
      const h = entry.header as Header;
      const body = createHash('sha256');
      for await (const chunk of entry as unknown as AsyncIterable<Uint8Array>) body.update(chunk);
      const xattrs = Object.entries(h.pax ?? {}).filter(([k]) => k.startsWith('SCHILY.xattr.')).sort(([a], [b]) => (a < b ? -1 : 1));
      total.update(`${JSON.stringify([h.name, h.type, (h.mode ?? 0) & 0o7777, paxNumber(h, 'uid') ?? h.uid ?? 0, paxNumber(h, 'gid') ?? h.gid ?? 0, h.linkname ?? '', h.devmajor ?? 0, h.devminor ?? 0, xattrs, body.digest('hex')])}\n`);
    }
  } catch (err) {
    throw new BuildError('ERR_KILN_IMAGE_INVALID', `failed to read the archive ${path.basename(file)}: ${(err as Error).message}`, { cause: err });
  } finally {
    done();
  }
  return `sha256:${total.digest('hex')}`;
}

/** Options of {@link unpackArchive}. */
export interface UnpackOptions {
  file: string;
  /** absolute directory to extract into (already created); entries resolve inside it as in a chroot */
  destDir: string;
  /** override every entry's owner (ADD --chown) */
  chown?: Owner;
  xattrs?: XattrWriter;
  signal?: AbortSignal;
  /** most entries extracted (default {@link archiveLimits}) */
  maxEntries?: number;
  /** most bytes of file content extracted (default {@link archiveLimits}) */
  maxBytes?: number;
}

/**
 * Limits of one ADD extraction (a tar bomb is refused with a clear error): 1,000,000 entries and 32 GiB of file
 * content unless `KILN_ADD_MAX_ENTRIES` / `KILN_ADD_MAX_BYTES` say otherwise.
 */
export function archiveLimits(): { maxEntries: number; maxBytes: number } {
  const num = (v: string | undefined, d: number): number => (v && /^\d+$/.test(v) ? Number(v) : d);
  return { maxEntries: num(process.env.KILN_ADD_MAX_ENTRIES, 1_000_000), maxBytes: num(process.env.KILN_ADD_MAX_BYTES, 32 * 1024 ** 3) };
}

function limitError(file: string, what: string): BuildError {
  return new BuildError('ERR_KILN_LIMIT_EXCEEDED', `ADD ${path.basename(file)}: the archive has more than ${what}`, {
    hint: 'split the archive, or raise the limit (KILN_ADD_MAX_ENTRIES, KILN_ADD_MAX_BYTES)',
  });
}

/** Extract the archive `file` into `destDir`. */
export async function unpackArchive(opts: UnpackOptions): Promise<{ files: number; bytes: number }> {
  const compression = detectCompression(readHead(opts.file, 6));
  const { stream, done } = openDecompressed(opts.file, compression);
  const extract = tarStream.extract({ allowUnknownFormat: true } as Parameters<typeof tarStream.extract>[0]);
  stream.on('error', (e) => extract.destroy(e));
  stream.pipe(extract as unknown as NodeJS.WritableStream);
  const limits = archiveLimits();
  const maxEntries = opts.maxEntries ?? limits.maxEntries;
  const maxBytes = opts.maxBytes ?? limits.maxBytes;
  const ctx: UnpackContext = { opts, tree: hostTree(opts.destDir), dirs: [], files: 0, bytes: 0, maxBytes };
  let entries = 0;
  try {
    for await (const entry of extract) {
      opts.signal?.throwIfAborted();
      if (++entries > maxEntries) throw limitError(opts.file, `${maxEntries} entries (the limit)`);
      await extractEntry(ctx, entry.header as Header, entry as unknown as Body);
    }
    // a later entry may have replaced a parent folder by a symlink: such a folder is gone, its times are not set
    const checked = new Map<string, boolean>();
    const root = path.resolve(opts.destDir);
    for (const d of ctx.dirs) if (parentsAreDirs(root, path.resolve(d.path), checked)) setTimes(d.path, d.atime, d.mtime, false);
  } catch (err) {
    if (err instanceof BuildError) throw err;
    throw new BuildError('ERR_KILN_IMAGE_INVALID', `failed to unpack ${path.basename(opts.file)}: ${(err as Error).message}`, {
      cause: err,
      hint: 'the archive is corrupt or uses an unsupported feature',
    });
  } finally {
    done();
  }
  return { files: ctx.files, bytes: ctx.bytes };
}

/** True when every folder from `root` down to the parent of `abs` is a real folder, not a symlink. */
function parentsAreDirs(root: string, abs: string, checked: Map<string, boolean>): boolean {
  const parent = path.dirname(abs);
  if (parent === root) return true;
  const known = checked.get(parent);
  if (known !== undefined) return known;
  const ok = parent.startsWith(`${root}/`) && parentsAreDirs(root, parent, checked) && lstatOrUndefined(parent)?.isDirectory() === true;
  checked.set(parent, ok);
  return ok;
}

interface UnpackContext {
  opts: UnpackOptions;
  tree: ReturnType<typeof hostTree>;
  dirs: Array<{ path: string; atime: number; mtime: number }>;
  files: number;
  bytes: number;
  maxBytes: number;
}

type Header = Omit<tarStream.Header, 'pax'> & { pax?: Record<string, string> | null };
type Body = AsyncIterable<Uint8Array> & { resume(): unknown };

function unsafe(message: string): BuildError {
  return new BuildError('ERR_KILN_ARCHIVE_UNSAFE', message);
}

/** Root-relative, cleaned entry name; null for the root itself. Throws when it would leave the root. */
function entryName(raw: string): string | null {
  const name = cleanPath(raw.replace(/^\/+/, ''));
  if (name === '.') return null;
  if (name === '..' || name.startsWith('../')) throw unsafe(`archive entry "${raw}" points outside the destination`);
  return name;
}

/** Resolve the parent of `name` inside the destination (following symlinks, clamped at the root). */
function resolveEntry(ctx: UnpackContext, name: string): string {
  const slash = name.lastIndexOf('/');
  if (slash < 0) return name;
  const parent = resolveInRoot(ctx.tree, name.slice(0, slash), true);
  return parent === '' ? name.slice(slash + 1) : `${parent}/${name.slice(slash + 1)}`;
}

function createImpliedDirs(ctx: UnpackContext, rel: string): void {
  const parts = rel.split('/').slice(0, -1);
  let cur = '';
  for (const p of parts) {
    cur = cur === '' ? p : `${cur}/${p}`;
    const abs = absPath(ctx.opts.destDir, cur);
    const st = lstatOrUndefined(abs);
    if (st) {
      const followed = st.isSymbolicLink() ? fs.statSync(abs, { throwIfNoEntry: false }) : st;
      if (followed?.isDirectory()) continue;
      throw new BuildError('ERR_KILN_COPY_DEST', `cannot extract into ${cur}: not a directory`);
    }
    fs.mkdirSync(abs);
    fs.chmodSync(abs, 0o755);
  }
}

async function extractEntry(ctx: UnpackContext, h: Header, body: Body): Promise<void> {
  const name = entryName(h.name);
  if (name === null || (h.type as string) === 'pax-global-header') {
    body.resume();
    return;
  }
  const rel = resolveEntry(ctx, name);
  const target = absPath(ctx.opts.destDir, rel);
  let linkTarget: string | undefined;
  if (h.type === 'link') linkTarget = hardlinkTarget(ctx, h.linkname ?? '');
  const existing = lstatOrUndefined(target);
  if (existing && !(existing.isDirectory() && h.type === 'directory')) fs.rmSync(target, { recursive: true, force: true });
  createImpliedDirs(ctx, rel);
  const mode = (h.mode ?? 0o644) & 0o7777;
  switch (h.type) {
    case 'directory':
      if (!existing?.isDirectory()) fs.mkdirSync(target, { mode: mode & 0o777 });
      body.resume();
      break;
    case 'file':
    case 'contiguous-file':
      if (ctx.bytes + (h.size ?? 0) > ctx.maxBytes) throw limitError(ctx.opts.file, `${ctx.maxBytes} bytes of content (the limit)`);
      ctx.bytes += await writeBody(body, target, mode & 0o777, ctx.maxBytes - ctx.bytes, ctx.opts.file);
      ctx.files++;
      break;
    case 'link':
      body.resume();
      fs.linkSync(linkTarget!, target);
      ctx.files++;
      break;
    case 'symlink':
      body.resume();
      fs.symlinkSync(h.linkname ?? '', target);
      ctx.files++;
      break;
    case 'character-device':
    case 'block-device':
    case 'fifo':
      body.resume();
      makeNode(target, h.type, h.devmajor ?? 0, h.devminor ?? 0);
      ctx.files++;
      break;
    default:
      body.resume();
      throw new BuildError('ERR_KILN_IMAGE_INVALID', `unhandled tar entry type for "${h.name}"`);
  }
  applyMetadata(ctx, h, target, linkTarget, mode);
}

function hardlinkTarget(ctx: UnpackContext, linkname: string): string {
  const cleaned = cleanPath(linkname.replace(/^\/+/, ''));
  if (cleaned === '.' || cleaned === '..' || cleaned.startsWith('../')) {
    throw unsafe(`archive hard link target "${linkname}" points outside the destination`);
  }
  return absPath(ctx.opts.destDir, resolveEntry(ctx, cleaned));
}

function paxNumber(h: Header, key: string): number | undefined {
  const v = h.pax?.[key];
  if (v === undefined) return undefined;
  const n = Number(v);
  return Number.isFinite(n) ? n : undefined;
}

function applyMetadata(ctx: UnpackContext, h: Header, target: string, linkTarget: string | undefined, mode: number): void {
  const owner = ctx.opts.chown ?? { uid: paxNumber(h, 'uid') ?? h.uid ?? 0, gid: paxNumber(h, 'gid') ?? h.gid ?? 0 };
  fs.lchownSync(target, owner.uid, owner.gid);
  const attrs: XattrMap = new Map();
  for (const [k, v] of Object.entries(h.pax ?? {})) {
    if (k.startsWith('SCHILY.xattr.')) attrs.set(k.slice('SCHILY.xattr.'.length), hexOfString(v));
  }
  if (attrs.size > 0) ctx.opts.xattrs?.set(target, attrs);
  const linkIsSymlink = linkTarget !== undefined && lstatOrUndefined(linkTarget)?.isSymbolicLink() === true;
  if (h.type !== 'symlink' && !linkIsSymlink) fs.chmodSync(target, mode);
  const mtime = paxNumber(h, 'mtime') ?? (h.mtime ? h.mtime.getTime() / 1000 : 0);
  const atime = Math.max(paxNumber(h, 'atime') ?? 0, mtime);
  if (h.type === 'directory') ctx.dirs.push({ path: target, atime, mtime });
  else if (h.type === 'symlink') setTimes(target, atime, mtime, true);
  else if (!linkIsSymlink) setTimes(target, atime, mtime, false);
}

function setTimes(p: string, atime: number, mtime: number, symlink: boolean): void {
  if (symlink) fs.lutimesSync(p, atime, mtime);
  else fs.utimesSync(p, atime, mtime);
}

async function writeBody(body: Body, target: string, mode: number, room: number, file: string): Promise<number> {
  const fd = fs.openSync(target, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_TRUNC | fs.constants.O_NOFOLLOW, mode);
  let n = 0;
  try {
    for await (const chunk of body) {
      const buf = chunk;
      let off = 0;
      while (off < buf.length) off += fs.writeSync(fd, buf, off, buf.length - off);
      n += buf.length;
      if (n > room) throw limitError(file, 'the limit of bytes of content');
    }
  } finally {
    fs.closeSync(fd);
  }
  return n;
}

/** Create a device node or FIFO (Node has no mknod; the coreutils tools do it). */
export function makeNode(target: string, type: 'character-device' | 'block-device' | 'fifo', major: number, minor: number): void {
  const res =
    type === 'fifo'
      ? spawnSync('mkfifo', [target], { stdio: 'ignore' })
      : spawnSync('mknod', [target, type === 'character-device' ? 'c' : 'b', String(major), String(minor)], { stdio: 'ignore' });
  if (res.status !== 0) {
    throw new BuildError('ERR_KILN_NOT_SUPPORTED', `cannot create ${type} ${path.basename(target)}`, {
      hint: 'creating device nodes needs root and the mknod/mkfifo tools',
    });
  }
}
