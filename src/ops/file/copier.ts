/**
 * Copying one resolved source into a destination path, with fsutil's copy semantics (BuildKit's COPY backend):
 * directories merge into existing ones, an existing dest directory keeps its owner and mode, entries below it take
 * the source's mode/mtime, the chown owner (or the source's), hardlinks within one source are kept.
 * @internal
 */
import fs from 'node:fs';
import path from 'node:path';
import { BuildError } from '../../errors/index.js';
import { makeNode } from './archive.js';
import type { ChmodSpec } from './mode.js';
import type { MatchInfo, PatternMatcher } from './patterns.js';
import { absPath, lstatOrUndefined, type SourceTree } from './tree.js';
import { readXattrsRecursive, type XattrWriter } from './xattrs.js';
import type { FileReuse, Owner } from './types.js';

/** Settings shared by every source of one COPY. */
export interface CopySettings {
  destRoot: string;
  /** explicit owner; undefined = `preserveOwnership` ? source owner : 0:0 */
  chown?: Owner;
  preserveOwnership: boolean;
  chmod?: ChmodSpec;
  exclude?: PatternMatcher;
  xattrs?: XattrWriter;
  signal?: AbortSignal;
  stats: { files: number; bytes: number };
  /** lets the caller supply regular files itself (see {@link FileReuse}) */
  reuse?: FileReuse;
}

interface ParentDir {
  srcRel: string;
  dst: string;
  copied: boolean;
}

const CLONE = fs.constants.COPYFILE_FICLONE;

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

/** Copies one source (file, directory, symlink, special file) to one target path. */
export class Copier {
  private readonly parents: ParentDir[] = [];
  private readonly inodes = new Map<string, string>();
  private readonly xattrPairs = new Map<string, string>();
  /** source path → [target, source stats] of files left to the reuse hook */
  private readonly skipped = new Map<string, [string, fs.Stats]>();
  private ticks = 0;

  constructor(
    private readonly s: CopySettings,
    private readonly src: SourceTree,
    private readonly include: PatternMatcher | undefined,
  ) {}

  /** Copy `srcRel` (visible in the source tree, already checked to exist) to the absolute `target`. */
  run(srcRel: string, target: string): void {
    this.copy(srcRel, '', target, false, undefined, undefined);
    if (this.s.xattrs) this.collectXattrs(srcRel);
  }

  private copy(srcRel: string, comps: string, target: string, overwrite: boolean, pInc: MatchInfo, pExc: MatchInfo): void {
    if ((++this.ticks & 255) === 0) this.s.signal?.throwIfAborted();
    let include = true;
    let excluded = false;
    let incInfo: MatchInfo;
    let excInfo: MatchInfo;
    if (comps !== '') {
      if (this.include) {
        const r = this.include.matchesUsingParentResults(comps, pInc);
        include = r.matched;
        incInfo = r.info;
      }
      if (this.s.exclude) {
        const r = this.s.exclude.matchesUsingParentResults(comps, pExc);
        if (r.matched) {
          include = false;
          excluded = true;
        }
        excInfo = r.info;
      }
      if (!include && !this.include && !this.s.exclude?.hasExclusions) return;
    }
    const st = this.src.lstat(srcRel);
    if (!st) return;
    if (!include && !st.isDirectory()) return;
    const targetSt = lstatOrUndefined(target);
    if (include) this.createParentDirs(overwrite);
    if (!st.isDirectory()) ensureEmptyFileTarget(target, targetSt);

    let copyInfo = include;
    let restoreTime = false;
    if (st.isDirectory()) {
      const created = this.copyDirectory({ srcRel, comps, dst: target, st, overwrite, include, excluded, incInfo, excInfo });
      if (!overwrite) {
        copyInfo = created;
        restoreTime = !created;
      }
    } else if (this.reused(srcRel, target, st)) {
      return;
    } else {
      // a later source wins over a file left to the reuse hook at the same place
      this.s.reuse?.unskip(target);
      this.copyLeaf(srcRel, target, st);
    }
    if (copyInfo) this.applyInfo(st, target, srcRel);
    else if (restoreTime && targetSt) setTimes(target, st);
  }

  /** Offer a plain file to the reuse hook; true when the hook takes it. */
  private reused(srcRel: string, target: string, st: fs.Stats): boolean {
    const reuse = this.s.reuse;
    if (!reuse || !st.isFile() || st.nlink !== 1) return false;
    const src = this.src.abs(srcRel);
    const owner = this.owner(st);
    if (!reuse.skip({ src, st, target, uid: owner.uid, gid: owner.gid, mode: this.modeFor(st) })) return false;
    this.skipped.set(src, [target, st]);
    this.s.stats.files++;
    this.s.stats.bytes += st.size;
    return true;
  }

  private copyLeaf(srcRel: string, target: string, st: fs.Stats): void {
    const stats = this.s.stats;
    if (st.isFile()) {
      const linkSource = st.nlink > 1 ? this.linkSource(st, target) : undefined;
      if (linkSource) fs.linkSync(linkSource, target);
      else {
        fs.copyFileSync(this.src.abs(srcRel), target, CLONE);
        stats.bytes += st.size;
      }
    } else if (st.isSymbolicLink()) {
      fs.symlinkSync(this.src.readlink(srcRel), target);
    } else if (st.isFIFO()) {
      makeNode(target, 'fifo', 0, 0);
    } else if (st.isCharacterDevice() || st.isBlockDevice()) {
      const { major, minor } = splitDev(st.rdev);
      makeNode(target, st.isCharacterDevice() ? 'character-device' : 'block-device', major, minor);
    } else {
      return; // sockets are not copied
    }
    stats.files++;
  }

  private linkSource(st: fs.Stats, target: string): string | undefined {
    const key = `${st.dev}:${st.ino}`;
    const first = this.inodes.get(key);
    if (first === undefined) this.inodes.set(key, target);
    return first;
  }

  private copyDirectory(a: {
    srcRel: string;
    comps: string;
    dst: string;
    st: fs.Stats;
    overwrite: boolean;
    include: boolean;
    excluded: boolean;
    incInfo: MatchInfo;
    excInfo: MatchInfo;
  }): boolean {
    let created = false;
    const parent: ParentDir = { srcRel: a.srcRel, dst: a.dst, copied: false };
    if (a.include) {
      created = copyDirectoryOnly(a.dst, a.st, a.overwrite);
      parent.copied = true;
    }
    this.parents.push(parent);
    try {
      if (a.excluded && !this.s.exclude?.hasExclusions) return false;
      for (const name of this.src.readdir(a.srcRel)) {
        const childRel = a.srcRel === '' ? name : `${a.srcRel}/${name}`;
        const childComps = a.comps === '' ? name : `${a.comps}/${name}`;
        this.copy(childRel, childComps, path.join(a.dst, name), true, a.incInfo, a.excInfo);
      }
    } finally {
      this.parents.pop();
    }
    return created;
  }

  /** Create directories whose creation was delayed until something below them was included. */
  private createParentDirs(overwrite: boolean): void {
    for (const p of this.parents) {
      if (p.copied) continue;
      const st = fs.statSync(this.src.abs(p.srcRel));
      if (!st.isDirectory()) throw new BuildError('ERR_KILN_COPY_DEST', `${p.srcRel} is not a directory`);
      if (copyDirectoryOnly(p.dst, st, overwrite)) this.applyInfo(st, p.dst, p.srcRel);
      p.copied = true;
    }
  }

  private owner(st: fs.Stats): Owner {
    if (this.s.chown) return this.s.chown;
    return this.s.preserveOwnership ? { uid: st.uid, gid: st.gid } : { uid: 0, gid: 0 };
  }

  /** fsutil's copyFileInfo: owner, then mode (chown clears setuid bits), then times. */
  private applyInfo(st: fs.Stats, target: string, srcRel: string): void {
    const owner = this.owner(st);
    fs.lchownSync(target, owner.uid, owner.gid);
    if (!st.isSymbolicLink()) fs.chmodSync(target, this.modeFor(st));
    setTimes(target, st);
    if (this.s.xattrs) this.xattrPairs.set(this.src.abs(srcRel), target);
  }

  private modeFor(st: fs.Stats): number {
    const perm = st.mode & 0o7777;
    return this.s.chmod ? this.s.chmod.apply(perm, st.isDirectory()) : perm;
  }

  private collectXattrs(srcRel: string): void {
    if (this.xattrPairs.size === 0 && this.skipped.size === 0) return;
    for (const [src, attrs] of readXattrsRecursive(this.src.abs(srcRel))) {
      const skipped = this.skipped.get(src);
      if (skipped && attrs.size > 0) {
        // the hook cannot know about attributes: copy this one for real
        const [target, st] = skipped;
        this.s.reuse!.unskip(target);
        fs.copyFileSync(src, target, CLONE);
        const owner = this.owner(st);
        fs.lchownSync(target, owner.uid, owner.gid);
        fs.chmodSync(target, this.modeFor(st));
        setTimes(target, st);
        this.s.xattrs!.set(target, attrs);
        continue;
      }
      const dst = this.xattrPairs.get(src);
      if (dst !== undefined) this.s.xattrs!.set(dst, attrs);
    }
  }
}

function copyDirectoryOnly(dst: string, st: fs.Stats, overwrite: boolean): boolean {
  const cur = lstatOrUndefined(dst);
  if (!cur) {
    fs.mkdirSync(dst, { mode: st.mode & 0o777 });
    return true;
  }
  if (!cur.isDirectory()) {
    throw new BuildError('ERR_KILN_COPY_DEST', `cannot copy a directory over the non-directory ${dst}`);
  }
  if (overwrite) fs.chmodSync(dst, st.mode & 0o7777);
  return false;
}

function ensureEmptyFileTarget(target: string, st: fs.Stats | undefined): void {
  if (!st) return;
  if (st.isDirectory()) {
    throw new BuildError('ERR_KILN_COPY_DEST', `cannot replace directory ${target} with a file`);
  }
  fs.unlinkSync(target);
}

/** Copy atime and mtime of `st` onto `target` (not following a symlink). */
export function setTimes(target: string, st: fs.Stats): void {
  const atime = st.atimeMs / 1000;
  const mtime = st.mtimeMs / 1000;
  if (st.isSymbolicLink()) fs.lutimesSync(target, atime, mtime);
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
