/**
 * Reading a source tree as the copy sees it (with .dockerignore applied), and resolving paths inside a root the
 * way containerd's continuity `fs.RootPath` does: symlinks are followed, absolute targets are relative to the
 * root, and '..' never leaves it.
 * @internal
 */
import fs from 'node:fs';
import path from 'node:path';
import { BuildError } from '../errors/index.js';
import { cleanAbs } from './source-words.js';

const MAX_LINKS = 255;

/** Anything paths can be resolved in: lstat and readlink of root-relative paths ('' is the root). */
export interface RootedFs {
  readonly root: string;
  lstat(rel: string): fs.Stats | undefined;
  readlink(rel: string): string;
}

/** The raw reads of a source tree, by root-relative path ('' is the root): the file system, or a watched memo of it. */
export interface TreeReads {
  lstat(rel: string): fs.Stats | undefined;
  /** names as `fs.readdirSync` gives them (unsorted; the caller sorts and checks them) */
  readdir(rel: string): string[];
  readlink(rel: string): string;
}

/** Join a root-relative path onto a root directory. */
export function absPath(root: string, rel: string): string {
  return rel === '' ? root : `${root}/${rel}`;
}

/** Plain host directory as a RootedFs. */
export function hostTree(root: string): RootedFs {
  return {
    root,
    lstat: (rel) => lstatOrUndefined(absPath(root, rel)),
    readlink: (rel) => fs.readlinkSync(absPath(root, rel)),
  };
}

/** lstat that returns undefined for a missing path (ENOENT, ENOTDIR). */
export function lstatOrUndefined(p: string): fs.Stats | undefined {
  try {
    return fs.lstatSync(p);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return undefined;
    throw err;
  }
}

/**
 * Resolve `p` (any path; it is taken as relative to the root) inside `tree`, following every symlink, the final
 * component too when `followFinal`. Components that do not exist are kept as written. Returns a root-relative path
 * ('' for the root). Callers clean `p` lexically first where Docker does.
 */
export function resolveInRoot(tree: RootedFs, p: string, followFinal = true): string {
  let done: string[] = [];
  let rest = p.split('/').filter((c) => c !== '');
  let links = 0;
  while (rest.length > 0) {
    const c = rest[0];
    rest = rest.slice(1);
    if (c === '.') continue;
    if (c === '..') {
      done.pop();
      continue;
    }
    const cand = [...done, c];
    if (rest.length === 0 && !followFinal) {
      done = cand;
      break;
    }
    const st = tree.lstat(cand.join('/'));
    if (st?.isSymbolicLink()) {
      if (++links > MAX_LINKS) {
        throw new BuildError('ERR_KILN_COPY_DEST', `too many levels of symbolic links resolving ${p}`);
      }
      const target = tree.readlink(cand.join('/'));
      const joined = target.startsWith('/') ? cleanAbs(target) : cleanAbs(done.join('/') + '/' + target);
      done = [];
      rest = [...joined.split('/').filter((x) => x !== ''), ...rest];
      continue;
    }
    done = cand;
  }
  return done.join('/');
}

/**
 * A source tree as COPY sees it: the directory `root` minus what `.dockerignore` excluded. An ignored directory
 * stays visible (with only its visible entries) when something below it is re-included by an exception.
 */
export class SourceTree implements RootedFs {
  readonly root: string;
  private readonly isIgnored: ((rel: string) => boolean) | undefined;
  private readonly exceptions: boolean;
  private readonly keepDir = new Map<string, boolean>();
  private readonly raw: TreeReads;

  constructor(opts: { root: string; isIgnored?: (rel: string) => boolean; hasExceptions?: boolean; reads?: TreeReads }) {
    this.root = opts.root;
    this.isIgnored = opts.isIgnored;
    this.exceptions = opts.hasExceptions ?? true;
    const root = opts.root;
    this.raw = opts.reads ?? {
      lstat: (rel) => lstatOrUndefined(absPath(root, rel)),
      readdir: (rel) => fs.readdirSync(absPath(root, rel)),
      readlink: (rel) => fs.readlinkSync(absPath(root, rel)),
    };
  }

  abs(rel: string): string {
    return absPath(this.root, rel);
  }

  /** lstat of a visible entry; undefined when missing or ignored */
  lstat(rel: string): fs.Stats | undefined {
    const st = this.raw.lstat(rel);
    if (st === undefined || rel === '' || !this.isIgnored) return st;
    return this.visible(rel, st) ? st : undefined;
  }

  readlink(rel: string): string {
    return this.raw.readlink(rel);
  }

  /**
   * Visible entry names of a directory, sorted bytewise as Go's ReadDir. A name that is not valid UTF-8 cannot be
   * carried through kiln's string paths: unless .dockerignore drops it, it is refused with an error naming it
   * (never silently left out of the image and the cache key).
   */
  readdir(rel: string): string[] {
    const names = readNames(this.abs(rel), rel, this.isIgnored, this.raw.readdir(rel)).sort(compareBytes);
    if (!this.isIgnored) return names;
    return names.filter((n) => {
      const child = rel === '' ? n : `${rel}/${n}`;
      if (!this.isIgnored!(child)) return true;
      const st = this.raw.lstat(child);
      return st !== undefined && this.visible(child, st);
    });
  }

  private visible(rel: string, st: fs.Stats): boolean {
    if (!this.isIgnored!(rel)) return true;
    if (!st.isDirectory() || !this.exceptions) return false;
    return this.hasVisibleDescendant(rel);
  }

  private hasVisibleDescendant(rel: string): boolean {
    const cached = this.keepDir.get(rel);
    if (cached !== undefined) return cached;
    let found = false;
    let names: string[] = [];
    try {
      names = readNames(this.abs(rel), rel, this.isIgnored, this.raw.readdir(rel));
    } catch (err) {
      if ((err as BuildError).code === 'ERR_KILN_CONTEXT_NAME') throw err;
      names = [];
    }
    for (const n of names) {
      const child = `${rel}/${n}`;
      if (!this.isIgnored!(child)) {
        found = true;
        break;
      }
      const st = this.raw.lstat(child);
      if (st?.isDirectory() && this.hasVisibleDescendant(child)) {
        found = true;
        break;
      }
    }
    this.keepDir.set(rel, found);
    return found;
  }
}

/** readdir with names as bytes: every name must be valid UTF-8 unless `dropped` says it is not sent. */
export function readNames(abs: string, rel: string, dropped?: (rel: string) => boolean, listed?: string[]): string[] {
  const names = listed ?? fs.readdirSync(abs);
  // invalid UTF-8 decodes to U+FFFD: only then are the names looked at as bytes
  if (!names.some((n) => n.includes('\uFFFD'))) return names;
  const raw = fs.readdirSync(abs, { encoding: 'buffer' });
  const out: string[] = [];
  for (const b of raw) {
    const name = b.toString('utf8');
    if (Buffer.byteLength(name) === b.length && Buffer.from(name).equals(b)) {
      out.push(name);
      continue;
    }
    const child = rel === '' || rel === '.' ? name : `${rel}/${name}`;
    if (dropped?.(child)) continue;
    const shown = (rel === '' || rel === '.' ? '' : `${rel}/`) + escapeBytes(b);
    throw new BuildError('ERR_KILN_CONTEXT_NAME', `file name "${shown}" is not valid UTF-8; kiln cannot copy it faithfully`, {
      details: { path: shown },
    });
  }
  return out;
}

/** Bytes as text: printable ASCII kept, everything else as \xNN. */
export function escapeBytes(b: Buffer): string {
  let s = '';
  for (const c of b) s += c >= 0x20 && c < 0x7f && c !== 0x5c ? String.fromCharCode(c) : `\\x${c.toString(16).padStart(2, '0')}`;
  return s;
}

/** Order strings by their UTF-8 bytes, as Go sorts directory entries. */
export function compareBytes(a: string, b: string): number {
  if (a === b) return 0;
  const ascii = /^[\x00-\x7f]*$/;
  if (ascii.test(a) && ascii.test(b)) return a < b ? -1 : 1;
  return Buffer.compare(Buffer.from(a), Buffer.from(b));
}
