/**
 * Incremental COPY from the build context: when a COPY misses the cache, the last result of the same step (same
 * op, same parent layers) usually differs in a few files only. Files whose content, mode, owner and mtime are
 * unchanged are hardlinked from that result's committed snapshot (immutable, so sharing inodes is safe) instead of
 * being copied again; the rest goes through the normal copy. The upper dir ends up identical to a full copy's.
 * @internal
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { CopyOp } from '../graph/index.js';
import type { Digest } from '../oci/index.js';
import { containsWildcards, type FileReuse } from './file/index.js';
import type { OpsOptions } from './types.js';

/** What is remembered about one COPY result: its layer and each file's content digest by upper-dir path. */
interface StepRecord {
  diffId: Digest;
  files: Record<string, string>;
}

interface Skipped {
  src: string;
  st: fs.Stats;
  uid: number;
  gid: number;
  mode: number;
  /** the earlier result's inode (dev:ino) */
  prevInode: string;
}

/** Identity of "this COPY on this parent": the op's fields and the parent's layers. */
export function copyStepId(op: CopyOp, parentLayers: readonly Digest[]): string {
  return createHash('sha256').update(JSON.stringify({ op, parentLayers })).digest('hex');
}

/**
 * Can this COPY be done incrementally at all? One literal source from the context (one tree walk, so no target is
 * written twice), nothing unusual; everything else takes the full path.
 */
export function reusableCopy(op: CopyOp): boolean {
  if (op.from !== 'context' || op.add || op.link || op.parents || op.excludes.length > 0 || op.inline.length > 0) return false;
  return op.sources.length === 1 && !containsWildcards(op.sources[0]!);
}

/** One incremental copy: the hook for copyInto, then `finish` links the skipped files into the upper dir. */
export class CopyReuse implements FileReuse {
  private readonly record: Record<string, string> = {};
  private readonly skipped = new Map<string, Skipped>();
  private prevDir: string | undefined;
  private prevFiles: Record<string, string> = {};

  constructor(
    private readonly o: Pick<OpsOptions, 'stateDir' | 'statCache' | 'db' | 'snapshots'>,
    private readonly stepId: string,
    private readonly mountpoint: string,
  ) {
    const prev = this.load();
    if (!prev) return;
    const layer = o.db.getLayer(prev.diffId);
    if (layer?.snapshotId == null || o.db.getSnapshot(layer.snapshotId)?.state !== 'committed') return;
    const dir = o.snapshots.dir(layer.snapshotId);
    if (!fs.existsSync(dir)) return;
    this.prevDir = dir;
    this.prevFiles = prev.files;
  }

  /** Files left for {@link finish}. */
  get count(): number {
    return this.skipped.size;
  }

  skip(f: { src: string; st: fs.Stats; target: string; uid: number; gid: number; mode: number }): boolean {
    const rel = this.relOf(f.target);
    if (rel === undefined) return false;
    const st = f.st;
    const digest = this.o.statCache.get(`${st.dev}:${st.ino}:${st.size}:${st.mtimeMs}:${st.ctimeMs}`);
    if (digest === undefined) return false;
    this.record[rel] = digest;
    if (this.prevDir === undefined || this.prevFiles[rel] !== digest) return false;
    const p = fs.lstatSync(path.join(this.prevDir, rel), { throwIfNoEntry: false });
    if (!p?.isFile() || p.size !== st.size || p.uid !== f.uid || p.gid !== f.gid || (p.mode & 0o7777) !== f.mode) return false;
    if (Math.floor(p.mtimeMs / 1000) !== Math.floor(st.mtimeMs / 1000) || Math.abs(p.mtimeMs - st.mtimeMs) > 0.001) return false;
    this.skipped.set(rel, { src: f.src, st, uid: f.uid, gid: f.gid, mode: f.mode, prevInode: `${p.dev}:${p.ino}` });
    return true;
  }

  unskip(target: string): void {
    const rel = this.relOf(target);
    if (rel !== undefined) this.skipped.delete(rel);
  }

  /**
   * Put every skipped file into `upperDir` (the unmounted upper dir of the copy): a hardlink to the earlier result,
   * or a copy from the source when that is not possible. Directory times are kept as the copy left them.
   */
  finish(upperDir: string): void {
    const dirs = new Map<string, fs.Stats>();
    for (const rel of this.skipped.keys()) {
      const d = path.join(upperDir, path.posix.dirname(rel));
      if (!dirs.has(d)) dirs.set(d, fs.lstatSync(d));
    }
    const inodes = new Set<string>();
    for (const [rel, s] of this.skipped) {
      const dst = path.join(upperDir, rel);
      // one inode twice in a layer would become a tar hardlink, which a full copy does not make
      if (!inodes.has(s.prevInode) && tryLink(path.join(this.prevDir!, rel), dst)) {
        inodes.add(s.prevInode);
        continue;
      }
      fs.rmSync(dst, { force: true });
      fs.copyFileSync(s.src, dst, fs.constants.COPYFILE_FICLONE);
      fs.lchownSync(dst, s.uid, s.gid);
      fs.chmodSync(dst, s.mode);
      fs.utimesSync(dst, s.st.atimeMs / 1000, s.st.mtimeMs / 1000);
    }
    for (const [d, st] of dirs) fs.utimesSync(d, st.atimeMs / 1000, st.mtimeMs / 1000);
  }

  /** Remember this result for the next run of the step. */
  save(diffId: Digest): void {
    const dir = path.join(this.o.stateDir, 'copy-steps');
    fs.mkdirSync(dir, { recursive: true });
    const file = path.join(dir, `${this.stepId}.json`);
    const tmp = `${file}.${process.pid}.tmp`;
    fs.writeFileSync(tmp, JSON.stringify({ diffId, files: this.record } satisfies StepRecord));
    fs.renameSync(tmp, file);
  }

  private load(): StepRecord | undefined {
    try {
      const rec = JSON.parse(fs.readFileSync(path.join(this.o.stateDir, 'copy-steps', `${this.stepId}.json`), 'utf8')) as StepRecord;
      return typeof rec.diffId === 'string' && rec.files && typeof rec.files === 'object' ? rec : undefined;
    } catch {
      return undefined;
    }
  }

  private relOf(target: string): string | undefined {
    const rel = path.relative(this.mountpoint, target);
    return rel === '' || rel.startsWith('..') || path.isAbsolute(rel) ? undefined : rel;
  }
}

/** Hardlink, replacing a whiteout the copy left where it cleared a lower file. */
function tryLink(src: string, dst: string): boolean {
  try {
    fs.linkSync(src, dst);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') return false;
  }
  try {
    if (!fs.lstatSync(dst).isCharacterDevice()) return false;
    fs.unlinkSync(dst);
    fs.linkSync(src, dst);
    return true;
  } catch {
    return false;
  }
}
