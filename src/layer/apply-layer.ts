import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { BuildError } from '../errors/index.js';
import { readTar } from './read-tar.js';
import type { EntrySink, ParsedEntry } from './tar-parser.js';
import type { ApplyLayerOptions } from './types.js';
import { restoreXattrs } from './xattr.js';

const WHITEOUT_PREFIX = '.wh.';
const OPAQUE_MARKER = '.wh..wh..opq';
const OPAQUE_XATTR = 'trusted.overlay.opaque';
const MAX_SYMLINK_HOPS = 40;

function unsafe(entry: string, why: string): BuildError {
  return new BuildError('ERR_KILN_ARCHIVE_UNSAFE', `layer entry ${JSON.stringify(entry)} ${why}`, { details: { entry } });
}

function invalid(entry: string, why: string, cause?: unknown): BuildError {
  return new BuildError('ERR_KILN_ARCHIVE_INVALID', `layer entry ${JSON.stringify(entry)} ${why}`, { cause, details: { entry } });
}

/** Clean a path from the archive: no absolute paths, no '..' components; '.' and empty components dropped. */
function cleanPath(p: string, entry: string, what = 'path'): string {
  if (p.includes('\u0000')) throw unsafe(entry, `has a NUL byte in its ${what}`);
  if (p.startsWith('/')) throw unsafe(entry, `has an absolute ${what} (${JSON.stringify(p)})`);
  const parts = p.split('/').filter((x) => x !== '' && x !== '.');
  if (parts.includes('..')) throw unsafe(entry, `has a '..' component in its ${what} (${JSON.stringify(p)})`);
  return parts.join('/');
}

const join = (dir: string, name: string): string => (dir === '' ? name : `${dir}/${name}`);
const parentOf = (rel: string): string => {
  const i = rel.lastIndexOf('/');
  return i === -1 ? '' : rel.slice(0, i);
};
const baseOf = (rel: string): string => rel.slice(rel.lastIndexOf('/') + 1);

function lstatOrNull(p: string): fs.Stats | null {
  try {
    return fs.lstatSync(p);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
}

interface PendingNode {
  abs: string;
  kind: 'c' | 'b' | 'p';
  major: number;
  minor: number;
  mode: number;
  uid: number;
  gid: number;
  mtime: number;
}

function shQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

/** Run a /bin/sh script (mknod lines): Node has no mknod. */
function runSh(script: string, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn('/bin/sh', ['-e', '-s'], { stdio: ['pipe', 'ignore', 'pipe'], signal });
    let stderr = '';
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (d: string) => {
      if (stderr.length < 8192) stderr += d;
    });
    child.on('error', reject);
    child.on('close', (code) => {
      if (code === 0) return resolve();
      reject(
        new BuildError('ERR_KILN_INTERNAL', `creating device nodes, fifos or whiteouts failed: ${stderr.trim()}`, {
          hint: 'unpacking layers with devices or whiteouts needs root (CAP_MKNOD)',
        }),
      );
    });
    child.stdin.on('error', () => undefined);
    child.stdin.end(script);
  });
}

/** Unpacks one layer into a folder. A stateful resource for the length of one applyLayer call. */
class LayerApplier {
  private readonly canChown = process.getuid?.() === 0;
  /** Archive-relative folder path → real folder path (relative to dest) after in-scope symlink resolution. */
  private dirs = new Map<string, string>([['', '']]);
  /** Real paths this layer wrote (for opaque markers in merge mode). */
  private readonly written = new Set<string>();
  private readonly dirTimes = new Map<string, number>();
  private readonly xattrs: Array<{ path: string; kind: string; attrs: Array<[string, Buffer]> }> = [];
  private readonly nodes = new Map<string, PendingNode>();
  private readonly whiteouts = new Map<string, string>();
  private readonly deferredLinks: Array<{ abs: string; target: string; entry: string }> = [];
  private openFd: number | null = null;

  constructor(
    private readonly dest: string,
    private readonly mode: 'overlay' | 'merge',
  ) {}

  private abs(rel: string): string {
    return rel === '' ? this.dest : path.join(this.dest, rel);
  }

  /** Forget resolved folders: something that was a folder or symlink was removed or replaced. */
  private invalidate(realRel: string): void {
    this.dirs = new Map([['', '']]);
    const prefix = `${realRel}/`;
    for (const k of [...this.nodes.keys()]) if (k.startsWith(prefix)) this.nodes.delete(k);
    for (const k of [...this.whiteouts.keys()]) if (k.startsWith(prefix)) this.whiteouts.delete(k);
  }

  /**
   * Resolve an archive folder path to a real folder inside dest, creating missing folders (0755). A symlink on the
   * way is followed only when its target is relative and stays inside dest; otherwise the entry is refused.
   */
  private resolveDir(rel: string, entry: string, hops = 0): string {
    return this.resolveDirMaybe(rel, entry, hops, true) as string;
  }

  /** As resolveDir; with create false, null when a folder on the way does not exist. */
  private resolveDirMaybe(rel: string, entry: string, hops: number, create: boolean): string | null {
    const known = this.dirs.get(rel);
    if (known !== undefined) return known;
    const realParent = this.resolveDirMaybe(parentOf(rel), entry, hops, create);
    if (realParent === null) return null;
    const realRel = join(realParent, baseOf(rel));
    if (this.nodes.has(realRel) || this.whiteouts.has(realRel)) throw invalid(entry, `needs ${realRel} to be a folder`);
    const abs = this.abs(realRel);
    const st = lstatOrNull(abs);
    let result: string;
    if (st === null) {
      if (!create) return null;
      fs.mkdirSync(abs, 0o755);
      fs.chmodSync(abs, 0o755);
      result = realRel;
    } else if (st.isDirectory()) {
      result = realRel;
    } else if (st.isSymbolicLink()) {
      if (hops >= MAX_SYMLINK_HOPS) throw unsafe(entry, `goes through too many symlinks at ${realRel}`);
      const target = fs.readlinkSync(abs);
      if (target.startsWith('/')) throw unsafe(entry, `would be written through the absolute symlink ${realRel} -> ${target}`);
      const parts = realParent === '' ? [] : realParent.split('/');
      for (const part of target.split('/')) {
        if (part === '' || part === '.') continue;
        if (part === '..') {
          if (parts.length === 0) throw unsafe(entry, `would be written through the symlink ${realRel} -> ${target}, which leaves the destination`);
          parts.pop();
        } else parts.push(part);
      }
      const resolved = parts.join('/');
      const r = this.resolveDirMaybe(resolved, entry, hops + 1, create);
      if (r === null) return null;
      result = r;
    } else {
      throw invalid(entry, `needs ${realRel} to be a folder, but it is not`);
    }
    this.dirs.set(rel, result);
    return result;
  }

  /** Clear the way for a new object at realRel. Returns true when an existing folder is kept (folder over folder). */
  private clearTarget(realRel: string, keepDir: boolean): boolean {
    if (this.nodes.delete(realRel) || this.whiteouts.delete(realRel)) return false;
    const abs = this.abs(realRel);
    const st = lstatOrNull(abs);
    if (st === null) return false;
    if (keepDir && st.isDirectory()) return true;
    if (st.isDirectory()) fs.rmSync(abs, { recursive: true, force: true });
    else fs.unlinkSync(abs);
    if (st.isDirectory() || st.isSymbolicLink()) this.invalidate(realRel);
    return false;
  }

  private setOwner(abs: string, e: ParsedEntry): void {
    if (this.canChown) fs.lchownSync(abs, e.uid, e.gid);
  }

  private recordXattrs(abs: string, kind: string, e: ParsedEntry): void {
    const attrs = (e.xattrs ?? []).filter(([k]) => !k.startsWith('trusted.overlay.'));
    if (attrs.length > 0) this.xattrs.push({ path: abs, kind, attrs: attrs.map(([k, v]) => [k, v]) });
  }

  onEntry(e: ParsedEntry): EntrySink | null {
    const rel = cleanPath(e.path, e.path);
    if (rel === '') return this.applyRoot(e);
    const name = baseOf(rel);
    if (name.startsWith(WHITEOUT_PREFIX)) {
      // In merge mode a whiteout under a folder that does not exist has nothing to delete.
      const parent = this.resolveDirMaybe(parentOf(rel), e.path, 0, this.mode === 'overlay');
      if (parent !== null) this.whiteout(parent, name, e);
      return null;
    }
    const parentReal = this.resolveDir(parentOf(rel), e.path);
    const realRel = join(parentReal, name);
    const abs = this.abs(realRel);
    switch (e.type) {
      case 'directory': {
        const kept = this.clearTarget(realRel, true);
        if (!kept) fs.mkdirSync(abs, 0o700);
        this.setOwner(abs, e);
        fs.chmodSync(abs, e.mode);
        this.dirTimes.set(abs, e.mtime);
        this.dirs.set(rel, realRel);
        this.dirs.set(realRel, realRel);
        this.recordXattrs(abs, 'directory', e);
        break;
      }
      case 'file':
        this.clearTarget(realRel, false);
        this.written.add(realRel);
        this.recordXattrs(abs, 'file', e);
        return this.fileSink(abs, e);
      case 'symlink':
        this.clearTarget(realRel, false);
        fs.symlinkSync(e.linkname ?? '', abs);
        this.setOwner(abs, e);
        fs.lutimesSync(abs, e.mtime, e.mtime);
        this.recordXattrs(abs, 'symlink', e);
        break;
      case 'link':
        this.clearTarget(realRel, false);
        this.hardlink(abs, e);
        break;
      case 'character-device':
      case 'block-device':
      case 'fifo':
        this.clearTarget(realRel, false);
        this.nodes.set(realRel, {
          abs,
          kind: e.type === 'fifo' ? 'p' : e.type === 'block-device' ? 'b' : 'c',
          major: e.devmajor ?? 0,
          minor: e.devminor ?? 0,
          mode: e.mode,
          uid: e.uid,
          gid: e.gid,
          mtime: e.mtime,
        });
        this.recordXattrs(abs, e.type, e);
        break;
      default:
        throw new BuildError('ERR_KILN_NOT_SUPPORTED', `layer entry ${JSON.stringify(e.path)} has unsupported tar type '${String.fromCharCode(e.typeflag)}'`);
    }
    this.written.add(realRel);
    return null;
  }

  private applyRoot(e: ParsedEntry): null {
    if (e.type !== 'directory') throw unsafe(e.path, 'replaces the destination folder itself');
    this.setOwner(this.dest, e);
    fs.chmodSync(this.dest, e.mode);
    this.dirTimes.set(this.dest, e.mtime);
    this.recordXattrs(this.dest, 'directory', e);
    return null;
  }

  private fileSink(abs: string, e: ParsedEntry): EntrySink {
    if (e.sparse === undefined && [...e.pax.keys()].some((k) => k.startsWith('GNU.sparse.'))) {
      throw new BuildError('ERR_KILN_NOT_SUPPORTED', `layer entry ${JSON.stringify(e.path)} is a GNU sparse file in the old 0.x format`, {
        hint: 'only the GNU sparse 1.0 format (tar --sparse-version=1.0) is read',
      });
    }
    const fd = fs.openSync(abs, 'wx', 0o600);
    this.openFd = fd;
    const expected = e.sparse ? e.sparse.reduce((a, [, l]) => a + l, 0) : e.size;
    let written = 0;
    return {
      data: (chunk, offset) => {
        let off = 0;
        while (off < chunk.length) off += fs.writeSync(fd, chunk, off, chunk.length - off, offset + off);
        written += chunk.length;
      },
      end: () => {
        if (written !== expected) throw invalid(e.path, 'is truncated');
        // the holes of a sparse file stay holes: only its data segments were written
        if (e.sparse) fs.ftruncateSync(fd, e.size);
        if (this.canChown) fs.fchownSync(fd, e.uid, e.gid);
        fs.fchmodSync(fd, e.mode);
        fs.futimesSync(fd, e.mtime, e.mtime);
        this.openFd = null;
        fs.closeSync(fd);
      },
    };
  }

  private hardlink(abs: string, e: ParsedEntry): void {
    const targetRel = cleanPath(e.linkname ?? '', e.path, 'hardlink target');
    if (targetRel === '') throw unsafe(e.path, 'is a hardlink to the destination folder');
    const targetReal = join(this.resolveDir(parentOf(targetRel), e.path), baseOf(targetRel));
    if (this.nodes.has(targetReal)) {
      this.deferredLinks.push({ abs, target: this.abs(targetReal), entry: e.path });
      return;
    }
    this.link(this.abs(targetReal), abs, e.path);
  }

  private link(target: string, abs: string, entry: string): void {
    try {
      fs.linkSync(target, abs);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') throw invalid(entry, `is a hardlink to ${path.relative(this.dest, target)}, which does not exist`, err);
      if (code === 'EPERM') throw invalid(entry, `is a hardlink to ${path.relative(this.dest, target)}, which is a folder`, err);
      throw err;
    }
  }

  private whiteout(parentReal: string, name: string, e: ParsedEntry): void {
    if (name === OPAQUE_MARKER) {
      if (this.mode === 'overlay') {
        this.xattrs.push({ path: this.abs(parentReal), kind: 'directory', attrs: [[OPAQUE_XATTR, Buffer.from('y')]] });
      } else this.prune(parentReal);
      return;
    }
    if (name.startsWith(`${WHITEOUT_PREFIX}${WHITEOUT_PREFIX}`)) return; // AUFS metadata (.wh..wh.plnk and so on)
    const victim = name.slice(WHITEOUT_PREFIX.length);
    if (victim === '' || victim === '.' || victim === '..') throw unsafe(e.path, 'is a whiteout of an invalid name');
    const realRel = join(parentReal, victim);
    if (this.mode === 'overlay') {
      this.clearTarget(realRel, false);
      this.whiteouts.set(realRel, this.abs(realRel));
    } else {
      this.clearTarget(realRel, false);
    }
  }

  /** Opaque folder in merge mode: remove everything below it that this layer did not write. */
  private prune(dirReal: string): void {
    for (const name of fs.readdirSync(this.abs(dirReal))) {
      const rel = join(dirReal, name);
      if (this.written.has(rel)) {
        const st = fs.lstatSync(this.abs(rel));
        if (st.isDirectory()) this.prune(rel);
        continue;
      }
      this.clearTarget(rel, false);
    }
  }

  /** Folder paths (absolute) found to be real folders inside dest, or not, while finishing. */
  private readonly checked = new Map<string, boolean>();

  /**
   * True when every folder on the way from dest to `abs` is a real folder (no symlink). The work left for the end of
   * the layer (nodes, links, xattrs, times) was recorded by path; a later entry may have replaced one of its parent
   * folders by a symlink to anywhere, and then that work belongs to an object that is gone and must not follow it.
   */
  private parentsAreDirs(abs: string): boolean {
    const parent = path.dirname(abs);
    if (parent === this.dest) return true;
    const known = this.checked.get(parent);
    if (known !== undefined) return known;
    const ok = parent.startsWith(`${this.dest}/`) && this.parentsAreDirs(parent) && lstatOrNull(parent)?.isDirectory() === true;
    this.checked.set(parent, ok);
    return ok;
  }

  /** Create nodes and whiteouts, then set xattrs (after chown, which clears capabilities) and folder times. */
  async finish(signal?: AbortSignal): Promise<void> {
    for (const [k, n] of this.nodes) if (!this.parentsAreDirs(n.abs)) this.nodes.delete(k);
    for (const [k, abs] of this.whiteouts) if (!this.parentsAreDirs(abs)) this.whiteouts.delete(k);
    await this.createNodes(signal);
    for (const l of this.deferredLinks) {
      if (this.parentsAreDirs(l.abs) && this.parentsAreDirs(l.target)) this.link(l.target, l.abs, l.entry);
    }
    await this.applyXattrs(signal);
    for (const [abs, mtime] of this.dirTimes) {
      if (abs !== this.dest && !this.parentsAreDirs(abs)) continue;
      try {
        fs.lutimesSync(abs, mtime, mtime);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      }
    }
  }

  private async createNodes(signal?: AbortSignal): Promise<void> {
    const lines: string[] = [];
    for (const n of this.nodes.values()) {
      lines.push(`mknod -m 0600 ${shQuote(n.abs)} ${n.kind}${n.kind === 'p' ? '' : ` ${n.major} ${n.minor}`}`);
    }
    let template: string | undefined;
    if (this.whiteouts.size > 0) {
      template = path.join(this.dest, `.kiln-whiteout-${randomBytes(6).toString('hex')}`);
      lines.push(`mknod -m 0000 ${shQuote(template)} c 0 0`);
    }
    if (lines.length === 0) return;
    await runSh(`${lines.join('\n')}\n`, signal);
    for (const n of this.nodes.values()) {
      if (this.canChown) fs.lchownSync(n.abs, n.uid, n.gid);
      fs.chmodSync(n.abs, n.mode);
      fs.lutimesSync(n.abs, n.mtime, n.mtime);
    }
    if (template === undefined) return;
    // Every whiteout is a hardlink of one char device 0/0: overlayfs only looks at the type and device number.
    try {
      for (const abs of this.whiteouts.values()) {
        try {
          fs.linkSync(template, abs);
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code !== 'EMLINK') throw err;
          fs.unlinkSync(template);
          await runSh(`mknod -m 0000 ${shQuote(template)} c 0 0\n`, signal);
          fs.linkSync(template, abs);
        }
      }
    } finally {
      fs.rmSync(template, { force: true });
    }
  }

  private async applyXattrs(signal?: AbortSignal): Promise<void> {
    const items = this.xattrs
      .map((x) => ({
        path: x.path,
        // The kernel refuses user.* on anything but regular files and folders.
        attrs: x.kind === 'file' || x.kind === 'directory' ? x.attrs : x.attrs.filter(([k]) => !k.startsWith('user.')),
      }))
      .filter((x) => x.attrs.length > 0 && (x.path === this.dest || this.parentsAreDirs(x.path)) && lstatOrNull(x.path) !== null);
    await restoreXattrs(items, signal);
  }

  close(): void {
    if (this.openFd !== null) fs.closeSync(this.openFd);
    this.openFd = null;
  }
}

/**
 * Unpack a layer blob (gzip, zstd or plain tar, detected by magic bytes) into `dest`.
 *
 * - mode 'overlay': dest becomes an overlay lowerdir: `.wh.NAME` entries become char devices 0/0 and
 *   `.wh..wh..opq` markers become the `trusted.overlay.opaque=y` xattr on their folder.
 * - mode 'merge': whiteouts delete from dest and opaque markers empty their folder of older content, to flatten
 *   layers into one folder.
 *
 * Entries with absolute paths or '..' components, hardlinks that point outside the layer, and entries that would be
 * written through a symlink leading out of dest are refused with ERR_KILN_ARCHIVE_UNSAFE naming the entry. Modes
 * (setuid included), owners (when running as root), mtimes, symlinks, hardlinks, devices, fifos and xattrs are kept.
 *
 * @example
 * await applyLayer({ source: store.path(layer.digest), dest: '/var/lib/kiln/snapshots/12/fs', mode: 'overlay' });
 */
export async function applyLayer(opts: ApplyLayerOptions): Promise<{ entries: number }> {
  opts.signal?.throwIfAborted();
  const dest = path.resolve(opts.dest);
  fs.mkdirSync(dest, { recursive: true });
  const applier = new LayerApplier(dest, opts.mode);
  try {
    const entries = await readTar({ source: opts.source, signal: opts.signal, onEntry: (e) => applier.onEntry(e) });
    await applier.finish(opts.signal);
    return { entries };
  } finally {
    applier.close();
  }
}
