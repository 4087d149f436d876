/**
 * Writing one resolved source (src/context's frozen entry list) into a destination path, with fsutil's copy
 * semantics (BuildKit's COPY backend): directories merge into existing ones, an existing dest directory keeps its
 * owner and mode, entries below it take the source's mode/mtime, the chown owner (or the source's), hardlinks within
 * one source are kept. Nothing here reads the source tree's structure: only the entries' paths and bytes.
 * @internal
 */
import fs from 'node:fs';
import path from 'node:path';
import { BuildError } from '../../errors/index.js';
import { copySparseFile, hasHoles } from '../../sparse/index.js';
import { makeNode } from './archive.js';
import { absPath, lstatOrUndefined, type SourceEntry, type SourceUnit } from '../../context/index.js';
import type { ChmodSpec } from './mode.js';
import type { XattrWriter } from './xattrs.js';
import type { Owner } from './types.js';

/** Settings shared by every source of one COPY. */
export interface CopySettings {
  destRoot: string;
  /** explicit owner; undefined = `preserveOwnership` ? source owner : 0:0 */
  chown?: Owner;
  preserveOwnership: boolean;
  chmod?: ChmodSpec;
  xattrs?: XattrWriter;
  signal?: AbortSignal;
  stats: { files: number; bytes: number };
  /** fail when a source file's stat differs from the resolved entry's (context sources; a stage root is immutable) */
  checkUnchanged: boolean;
}

const CLONE = fs.constants.COPYFILE_FICLONE;

/** Files this big are looked at for holes (one lstat): a sparse file is copied with its holes. */
const SPARSE_CHECK = 1024 * 1024;

/** Copy one regular file's bytes (and permission bits) to a new file; a file with holes keeps them. */
function copyFile(src: string, dst: string, size: number): void {
  if (size >= SPARSE_CHECK) {
    const st = fs.lstatSync(src);
    if (hasHoles(st)) return copySparseFile(src, dst, st.mode);
  }
  fs.copyFileSync(src, dst, CLONE);
}

/** Mode for directories this copy creates as parents: 0755, or the octal --chmod (BuildKit). */
export function createdDirMode(s: CopySettings): number {
  return s.chmod?.octal ?? 0o755;
}

/** Owner of directories this copy creates as parents. */
export function createdDirOwner(s: CopySettings): Owner {
  return s.chown ?? { uid: 0, gid: 0 };
}

/**
 * mkdir -p of `rel` inside destRoot (a path already resolved there); created directories get `mode` and `owner`.
 * An existing non-directory in the way is an error.
 */
export function mkdirAllIn(destRoot: string, rel: string, mode: number, owner: Owner): void {
  let cur = '';
  for (const part of rel.split('/')) {
    if (part === '') continue;
    cur = cur === '' ? part : `${cur}/${part}`;
    const abs = absPath(destRoot, cur);
    const st = lstatOrUndefined(abs);
    if (st) {
      if (st.isDirectory()) continue;
      const followed = st.isSymbolicLink() ? fs.statSync(abs, { throwIfNoEntry: false }) : undefined;
      if (followed?.isDirectory()) continue;
      throw new BuildError('ERR_KILN_COPY_DEST', `cannot create directory /${cur}: a file is in the way`);
    }
    fs.mkdirSync(abs);
    fs.chmodSync(abs, mode);
    fs.lchownSync(abs, owner.uid, owner.gid);
  }
}

/** Writes one resolved unit's entries to one target path: the only place a COPY's files are written. */
export function writeUnit(s: CopySettings, root: string, unit: SourceUnit, target: string): void {
  const open: Array<{ e: SourceEntry; dst: string; created: boolean; existed: boolean }> = [];
  const written = new Map<string, string>();
  let ticks = 0;
  const close = (upTo: string): void => {
    while (open.length > 0 && !isBelow(upTo, open[open.length - 1]!.e.rel)) finishDir(open.pop()!);
  };
  const finishDir = (d: { e: SourceEntry; dst: string; created: boolean; existed: boolean }): void => {
    if (d.e.rel !== '' || d.created) applyInfo(s, d.e, d.dst);
    else if (d.existed) setTimes(d.dst, d.e);
  };
  for (const e of unit.entries) {
    if ((++ticks & 255) === 0) s.signal?.throwIfAborted();
    close(e.rel);
    const dst = e.rel === '' ? target : path.join(target, e.rel);
    // below a directory this copy just created nothing can be in the way: spare the lstat (20,000 files: ~0.1 s)
    const top = open[open.length - 1];
    const fresh = top !== undefined && top.created && parentRel(e.rel) === top.e.rel;
    const existing = fresh ? undefined : lstatOrUndefined(dst);
    if (e.type === 'dir') {
      if (e.lazy) {
        if (copyDirectoryOnly(dst, e, true)) applyInfo(s, e, dst);
        continue;
      }
      const created = copyDirectoryOnly(dst, e, e.rel !== '');
      open.push({ e, dst, created, existed: existing !== undefined });
      continue;
    }
    ensureEmptyFileTarget(dst, existing);
    const copied = writeLeaf(s, root, e, dst, written);
    applyInfo(s, e, dst, copied);
  }
  close('\0');
}

function parentRel(rel: string): string {
  const i = rel.lastIndexOf('/');
  return i < 0 ? '' : rel.slice(0, i);
}

function isBelow(rel: string, dir: string): boolean {
  if (rel === '\0') return false;
  return dir === '' || rel.startsWith(`${dir}/`);
}

/** Write one non-directory; true when it is a fresh copy of a regular file (its mode then is the source's already). */
function writeLeaf(s: CopySettings, root: string, e: SourceEntry, dst: string, written: Map<string, string>): boolean {
  let copied = false;
  const stats = s.stats;
  if (e.type === 'file') {
    const first = e.hardlink !== undefined ? written.get(e.hardlink) : undefined;
    if (first !== undefined) fs.linkSync(first, dst);
    else {
      const src = absPath(root, e.src);
      copyFile(src, dst, e.size);
      if (s.checkUnchanged) checkUnchanged(src, e);
      stats.bytes += e.size;
      copied = true;
    }
    written.set(e.rel, dst);
  } else if (e.type === 'symlink') {
    fs.symlinkSync(e.linkTarget ?? '', dst);
  } else if (e.type === 'fifo') {
    makeNode(dst, 'fifo', 0, 0);
  } else {
    const { major, minor } = splitDev(e.rdev ?? 0);
    makeNode(dst, e.type === 'char' ? 'character-device' : 'block-device', major, minor);
  }
  stats.files++;
  return copied;
}

/**
 * The bytes copied must be the bytes keyed: a file whose inode, size or mtime changed since resolution fails the step.
 * ctime is left out here: a new hardlink to the file (RUN bind mounts of a filtered context make them) moves it
 * without touching the content.
 */
export function checkUnchanged(src: string, e: SourceEntry): void {
  const st = fs.lstatSync(src, { throwIfNoEntry: false });
  const now = st ? `${st.dev}:${st.ino}:${st.size}:${st.mtimeMs}:` : 'missing';
  if (!e.statKey.startsWith(now)) {
    throw new BuildError('ERR_KILN_CONTEXT_CHANGED', `${e.src} changed while the build was reading it`, { details: { path: e.src } });
  }
}

function ownerOf(s: CopySettings, e: SourceEntry): Owner {
  if (s.chown) return s.chown;
  return s.preserveOwnership ? { uid: e.uid, gid: e.gid } : { uid: 0, gid: 0 };
}

/**
 * fsutil's copyFileInfo: owner, then mode (chown clears setuid bits), then times; then xattrs. A freshly copied file
 * already has the source's permission bits (copyfile sets them), so only --chmod or setuid/setgid bits need a chmod.
 */
function applyInfo(s: CopySettings, e: SourceEntry, target: string, copied = false): void {
  const owner = ownerOf(s, e);
  fs.lchownSync(target, owner.uid, owner.gid);
  const keepsMode = copied && !s.chmod && (e.perm & 0o6000) === 0;
  if (e.type !== 'symlink' && !keepsMode) fs.chmodSync(target, s.chmod ? s.chmod.apply(e.perm, e.type === 'dir') : e.perm);
  setTimes(target, e);
  if (s.xattrs && e.xattrs) s.xattrs.set(target, new Map(Object.entries(e.xattrs)));
}

function copyDirectoryOnly(dst: string, e: SourceEntry, overwrite: boolean): boolean {
  const cur = lstatOrUndefined(dst);
  if (!cur) {
    fs.mkdirSync(dst, { mode: e.perm & 0o777 });
    return true;
  }
  if (!cur.isDirectory()) {
    throw new BuildError('ERR_KILN_COPY_DEST', `cannot copy a directory over the non-directory ${dst}`);
  }
  if (overwrite) fs.chmodSync(dst, e.perm);
  return false;
}

function ensureEmptyFileTarget(target: string, st: fs.Stats | undefined): void {
  if (!st) return;
  if (st.isDirectory()) {
    throw new BuildError('ERR_KILN_COPY_DEST', `cannot replace directory ${target} with a file`);
  }
  fs.unlinkSync(target);
}

/** Copy atime and mtime of `e` onto `target` (not following a symlink). */
export function setTimes(target: string, e: { type: string; atimeMs: number; mtimeMs: number }): void {
  const atime = e.atimeMs / 1000;
  const mtime = e.mtimeMs / 1000;
  if (e.type === 'symlink') fs.lutimesSync(target, atime, mtime);
  else fs.utimesSync(target, atime, mtime);
}

function splitDev(rdev: number): { major: number; minor: number } {
  const hi = Math.floor(rdev / 2 ** 32);
  const lo = rdev >>> 0;
  return {
    major: ((lo >>> 8) & 0xfff) | ((hi & 0xfffff000) >>> 0),
    minor: ((lo & 0xff) | ((lo >>> 12) & 0xfff00) | ((hi & 0xfff) << 20)) >>> 0,
  };
}
