import { createHash } from 'node:crypto';
import { closeSync, mkdirSync, openSync, readFileSync, readSync, renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { readIgnorePatterns, walkContext } from '../context/index.js';
import type { ContextManifestEntry } from './types.js';

/** A context's manifest and where each digest's bytes are on this machine. */
export interface ContextManifest {
  entries: ContextManifestEntry[];
  /** digest → a file with those bytes */
  files: Map<string, { path: string; size: number }>;
  /** bytes of all distinct file contents */
  bytes: number;
}

function hashFile(file: string): string {
  const h = createHash('sha256');
  const fd = openSync(file, 'r');
  try {
    const buf = Buffer.allocUnsafe(1024 * 1024);
    for (let n; (n = readSync(fd, buf, 0, buf.length, null)) > 0; ) h.update(buf.subarray(0, n));
  } finally {
    closeSync(fd);
  }
  return `sha256:${h.digest('hex')}`;
}

/** What a cached digest was computed from: a file is re-read only when one of these changed. */
type StatKey = string;
const statCache = new Map<StatKey, string>();

const CACHE_VERSION = 1;

/** Load a digest cache file (missing or unreadable: empty) into the in-process cache. */
function loadCacheFile(file: string): void {
  try {
    const c = JSON.parse(readFileSync(file, 'utf8')) as { version?: number; entries?: Array<[string, string]> };
    if (c.version !== CACHE_VERSION || !Array.isArray(c.entries)) return;
    for (const [k, d] of c.entries) if (typeof k === 'string' && typeof d === 'string' && /^sha256:[a-f0-9]{64}$/.test(d)) statCache.set(k, d);
  } catch {
    /* none yet, or damaged: files are hashed again */
  }
}

/** Write the digests of this manifest's files (only those: the file does not grow with every context ever seen). */
function saveCacheFile(file: string, keys: Array<[string, string]>): void {
  try {
    mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
    const tmp = `${file}.${process.pid}.tmp`;
    writeFileSync(tmp, JSON.stringify({ version: CACHE_VERSION, entries: keys }), { mode: 0o600 });
    renameSync(tmp, file);
  } catch {
    /* a cache only: the next run hashes again */
  }
}

/**
 * The manifest of what a build reads from `contextDir`: the paths `include` names (all when absent), minus
 * `.dockerignore` and `ignorePatterns`; each file with mode, size and sha256, links with their target, hardlinks
 * as links to their first path. Digests are remembered per (dev, inode, size, mtime, ctime) for the process.
 */
export async function computeManifest(opts: {
  contextDir: string;
  include?: string[];
  ignorePatterns?: string[];
  dockerfilePath?: string;
  /**
   * A file (under the caller's state root) keeping the digests between processes, keyed like the engine's stat
   * cache (path, dev, inode, size, mtime, ctime), so an unchanged context is not read again by the next client run.
   */
  cacheFile?: string;
}): Promise<ContextManifest> {
  const dir = path.resolve(opts.contextDir);
  if (opts.cacheFile) loadCacheFile(opts.cacheFile);
  const used: Array<[string, string]> = [];
  const exclude = [...(await readIgnorePatterns({ contextDir: dir, dockerfilePath: opts.dockerfilePath ?? path.join(dir, 'Dockerfile') })), ...(opts.ignorePatterns ?? [])];
  const include = opts.include && !opts.include.includes('.') ? opts.include : undefined;
  const walked = await walkContext({ dir, excludePatterns: exclude, ...(include ? { includePatterns: include } : {}) });
  const entries: ContextManifestEntry[] = [];
  const files = new Map<string, { path: string; size: number }>();
  const inodes = new Map<string, string>();
  let bytes = 0;
  for (const e of walked) {
    if (e.path === '.' || e.path === '') continue;
    const mode = e.mode & 0o7777;
    if (e.type === 'dir') entries.push({ path: e.path, type: 'dir', mode });
    else if (e.type === 'symlink') entries.push({ path: e.path, type: 'symlink', mode, target: e.linkTarget ?? '' });
    else if (e.type === 'file') {
      const ino = `${e.dev}:${e.ino}`;
      const first = e.nlink > 1 ? inodes.get(ino) : undefined;
      if (first) {
        entries.push({ path: e.path, type: 'file', mode, size: e.size, linkOf: first });
        continue;
      }
      if (e.nlink > 1) inodes.set(ino, e.path);
      const abs = path.join(dir, e.path);
      const key = `${abs}\0${ino}:${e.size}:${e.mtimeMs}:${e.ctimeMs}`;
      let digest = statCache.get(key);
      if (!digest) {
        digest = hashFile(abs);
        statCache.set(key, digest);
      }
      used.push([key, digest]);
      entries.push({ path: e.path, type: 'file', mode, size: e.size, digest });
      if (!files.has(digest)) {
        files.set(digest, { path: abs, size: e.size });
        bytes += e.size;
      }
    }
    // sockets, FIFOs and devices are not sent (Docker does not send them either)
  }
  if (opts.cacheFile) saveCacheFile(opts.cacheFile, used);
  return { entries, files, bytes };
}
