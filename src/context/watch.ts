/**
 * Watched source trees, for a long-lived process (`kiln serve`): what the context walk read of a tree (each
 * directory's listing, its entries' lstat and link targets) is kept and dropped again by the inotify events of that
 * directory (Node's `fs.watch`, one watch per directory, set up before the directory is first read), and a whole
 * resolution is kept while nothing at all changed under its root. Node's recursive `fs.watch` is not used: on Linux
 * it is a JavaScript emulation that sets its watches up asynchronously, so when a watch became complete is unknown.
 *
 * When the memo may be trusted:
 * - every directory is read only after its watch was set up, and a read is kept only if that watch is still open;
 * - before each use, a cookie file is written in a watched directory of our own and its event awaited: the process
 *   has one inotify queue, read in order, so every change made before the build began has then been seen;
 * - any event drops what it may have changed (a directory's listing, the entry's lstat, the directory's own lstat; a
 *   'rename' the subtree below the name); an event without a name, a watch error, a 'rename' of the root, or a burst
 *   of events large enough that the kernel queue may have overflowed (libuv drops the overflow event) drop the root;
 * - entries changed within the racy window, hard-linked files (another name's directory may see the change) and
 *   names that are not UTF-8 are never kept; nor is a whole resolution that read any of them;
 * - too many directories under a root, or the inotify limits (ENOSPC, EMFILE), give the root up: it is walked.
 * @internal
 */
import fs, { type FSWatcher, type Stats } from 'node:fs';
import path from 'node:path';
import { lstatOrUndefined, type TreeReads } from './source-tree.js';

/** Entries changed this recently are read again every time (file times tick coarsely). */
const RACY_MS = 50;
const COOKIE_TIMEOUT_MS = 5000;

/** One use of a watched root (one resolution): its reads, and whole results memoized by the caller's key. */
export interface WatchedTree<T> extends TreeReads {
  /** a result kept under `key`, when nothing under the root changed since the walk that produced it began */
  recall(key: string): T | undefined;
  /**
   * the last result kept under `key` and the root-relative paths changed since, when every event since then was a
   * content or attribute change of a named entry (nothing created, removed or renamed): the caller may re-read only
   * those paths
   */
  recallChanged(key: string): { value: T; changed: ReadonlySet<string> } | undefined;
  /** keep a result produced through this session's reads (only if they were all watched, settled and unchanged) */
  keep(key: string, value: T): void;
}

/** What a watch did, for traces and tests. */
export interface WatchCounters {
  /** lstat, readdir and readlink calls that reached the file system */
  lstat: number;
  readdir: number;
  readlink: number;
  /** results recalled whole */
  recalled: number;
  events: number;
  /** roots dropped (error, overflow, root renamed, eviction) or given up */
  dropped: number;
  watchedDirs: number;
}

/** Watched trees by root directory (see the module comment for when they are trusted). */
export interface ContextWatch<T> {
  /** the root's watched tree once every earlier change has been seen; undefined: not watched (walk it) */
  open(root: string, opts?: { signal?: AbortSignal }): Promise<WatchedTree<T> | undefined>;
  counters(): WatchCounters;
  close(): void;
}

/** Options of {@link createContextWatch}. */
export interface ContextWatchOptions {
  /** a directory of our own for cookie files (created) */
  cookieDir: string;
  /** roots watched at once (least recently used first out); default 8 */
  maxRoots?: number;
  /** directories watched under one root before it is given up; default 20,000 */
  maxDirs?: number;
  /** events in one burst taken as a possible queue overflow; default half of fs.inotify.max_queued_events */
  overflowEvents?: number;
  /** told why a root was dropped or given up */
  onDrop?: (root: string, reason: string) => void;
}

interface Dir {
  watcher: FSWatcher;
  names?: string[];
  stats: Map<string, Stats | null>;
  links: Map<string, string>;
}

interface Kept<T> {
  gen: number;
  value: T;
}

function errCode(err: unknown): string | undefined {
  return (err as NodeJS.ErrnoException).code;
}

function parentOf(rel: string): string {
  const i = rel.lastIndexOf('/');
  return i < 0 ? '' : rel.slice(0, i);
}

function baseOf(rel: string): string {
  return rel.slice(rel.lastIndexOf('/') + 1);
}

function join(dir: string, name: string): string {
  return dir === '' ? name : `${dir}/${name}`;
}

/** One watched root: its directories' memos, a generation bumped by every event, and whole results. */
class WatchedRoot<T> {
  gen = 0;
  dead = false;
  readonly dirs = new Map<string, Dir>();
  rootStat: Stats | null | undefined;
  readonly kept = new Map<string, Kept<T>>();
  /** what each event since generation `logBase` changed: a path ('change' of a named entry) or null (anything else) */
  log: Array<string | null> = [];
  logBase = 0;

  constructor(
    readonly root: string,
    private readonly w: FsWatchContexts<T>,
  ) {}

  abs(rel: string): string {
    return rel === '' ? this.root : `${this.root}/${rel}`;
  }

  /** Watch a directory (before it is read); undefined when it cannot be watched (then it is read unwatched). */
  watchDir(rel: string): Dir | undefined {
    const known = this.dirs.get(rel);
    if (known || this.dead) return known;
    if (this.dirs.size >= this.w.maxDirs) {
      this.w.drop(this, `more than ${this.w.maxDirs} directories`, true);
      return undefined;
    }
    let watcher: FSWatcher;
    try {
      watcher = fs.watch(this.abs(rel), { persistent: false }, (type, name) => this.onEvent(rel, type, name));
    } catch (err) {
      const code = errCode(err);
      if (code === 'ENOSPC' || code === 'EMFILE') this.w.drop(this, `inotify limit (${code})`, true);
      return undefined;
    }
    watcher.on('error', (err) => this.w.drop(this, `watch error: ${(err as Error).message}`, false));
    const d: Dir = { watcher, stats: new Map(), links: new Map() };
    this.dirs.set(rel, d);
    return d;
  }

  onEvent(dirRel: string, type: string, name: string | Buffer | null): void {
    this.gen++;
    const named = typeof name === 'string' && name !== '' && !name.includes('\uFFFD') && name !== path.basename(this.abs(dirRel));
    this.log.push(named && type === 'change' ? join(dirRel, name) : null);
    if (this.log.length > 4096) {
      this.log.splice(0, 2048);
      this.logBase += 2048;
    }
    this.w.noteEvent();
    if (this.dead) return;
    const d = this.dirs.get(dirRel);
    if (typeof name !== 'string' || name === '' || name.includes('\uFFFD')) {
      if (dirRel === '') this.w.drop(this, 'event without a name at the root', false);
      else this.dropSubtree(dirRel);
      return;
    }
    this.dropOwnStat(dirRel);
    if (d) {
      d.stats.delete(name);
      d.links.delete(name);
      if (type === 'rename') {
        d.names = undefined;
        this.dropSubtree(join(dirRel, name));
      }
    }
    // a watched directory's own events carry its own name (libuv): taken as the directory itself too
    if (name !== path.basename(this.abs(dirRel))) return;
    if (type !== 'rename') return;
    if (dirRel === '') this.w.drop(this, 'the root was renamed or removed', false);
    else this.dropSubtree(dirRel);
  }

  /** Forget a directory's own lstat (its times or mode changed), kept by its parent. */
  private dropOwnStat(rel: string): void {
    if (rel === '') {
      this.rootStat = undefined;
      return;
    }
    const p = this.dirs.get(parentOf(rel));
    p?.stats.delete(baseOf(rel));
  }

  /** Forget a path and everything below it (renamed, removed or replaced), closing their watches. */
  dropSubtree(rel: string): void {
    const prefix = `${rel}/`;
    for (const [k, d] of this.dirs) {
      if (k !== rel && !k.startsWith(prefix)) continue;
      d.watcher.close();
      this.dirs.delete(k);
    }
    if (rel !== '') this.dropOwnStat(rel);
  }

  closeAll(): void {
    this.dead = true;
    for (const d of this.dirs.values()) d.watcher.close();
    this.dirs.clear();
    this.kept.clear();
    this.log = [];
    this.rootStat = undefined;
  }
}

/** One resolution's reads through a watched root. */
class Session<T> implements WatchedTree<T> {
  private readonly gen0: number;
  private readonly settledBefore = Date.now() - RACY_MS;
  /** something was read unwatched or unsettled: no whole result is kept */
  private unsettled = false;

  constructor(
    private readonly r: WatchedRoot<T>,
    private readonly w: FsWatchContexts<T>,
  ) {
    this.gen0 = r.gen;
  }

  private settled(st: Stats | undefined): boolean {
    if (!st || st.isDirectory()) return true;
    if (st.nlink > 1) return false;
    return st.mtimeMs < this.settledBefore && st.ctimeMs < this.settledBefore;
  }

  private direct(rel: string): Stats | undefined {
    this.w.count.lstat++;
    return lstatOrUndefined(this.r.abs(rel));
  }

  lstat(rel: string): Stats | undefined {
    const r = this.r;
    if (r.dead) {
      this.unsettled = true;
      return this.direct(rel);
    }
    if (rel === '') {
      if (r.rootStat !== undefined) return r.rootStat ?? undefined;
      const st = this.direct('');
      if (r.dirs.has('')) r.rootStat = st ?? null;
      else this.unsettled = true;
      return st;
    }
    const d = this.dirOf(parentOf(rel));
    if (!d) {
      this.unsettled = true;
      return this.direct(rel);
    }
    const name = baseOf(rel);
    const known = d.stats.get(name);
    if (known !== undefined) return known ?? undefined;
    const st = this.direct(rel);
    if (this.settled(st) && r.dirs.get(parentOf(rel)) === d) d.stats.set(name, st ?? null);
    else this.unsettled = true;
    return st;
  }

  /** The watched directory `rel` (watched before anything in it is read), if it is one. */
  private dirOf(rel: string): Dir | undefined {
    const known = this.r.dirs.get(rel);
    if (known) return known;
    if (!this.lstat(rel)?.isDirectory()) return undefined;
    return this.r.watchDir(rel);
  }

  readdir(rel: string): string[] {
    const d = this.r.dead ? undefined : this.dirOf(rel);
    if (d?.names) return d.names.slice();
    this.w.count.readdir++;
    const names = fs.readdirSync(this.r.abs(rel));
    if (d && this.r.dirs.get(rel) === d && !names.some((n) => n.includes('\uFFFD'))) d.names = names.slice();
    else this.unsettled = true;
    return names;
  }

  readlink(rel: string): string {
    const d = this.r.dead ? undefined : this.dirOf(parentOf(rel));
    const name = baseOf(rel);
    const known = d?.links.get(name);
    if (known !== undefined) return known;
    this.w.count.readlink++;
    const target = fs.readlinkSync(this.r.abs(rel));
    // kept only beside a kept lstat of the same link (both dropped by the same events)
    if (d && d.stats.get(name)?.isSymbolicLink()) d.links.set(name, target);
    else this.unsettled = true;
    return target;
  }

  recall(key: string): T | undefined {
    const k = this.r.kept.get(key);
    if (!k || this.r.dead || k.gen !== this.r.gen) return undefined;
    this.w.count.recalled++;
    return k.value;
  }

  recallChanged(key: string): { value: T; changed: ReadonlySet<string> } | undefined {
    const r = this.r;
    const k = r.kept.get(key);
    if (!k || r.dead || k.gen < r.logBase) return undefined;
    const changed = new Set<string>();
    for (let i = k.gen - r.logBase; i < r.log.length; i++) {
      const rel = r.log[i];
      if (rel === null || rel === undefined) return undefined;
      changed.add(rel);
    }
    return { value: k.value, changed };
  }

  keep(key: string, value: T): void {
    const r = this.r;
    if (this.unsettled || r.dead || r.gen !== this.gen0) return;
    if (r.kept.size >= 32 && !r.kept.has(key)) r.kept.delete(r.kept.keys().next().value!);
    r.kept.set(key, { gen: this.gen0, value });
  }
}

/** {@link ContextWatch} over Node's per-directory `fs.watch` (inotify on Linux). */
class FsWatchContexts<T> implements ContextWatch<T> {
  readonly maxDirs: number;
  readonly count: WatchCounters = { lstat: 0, readdir: 0, readlink: 0, recalled: 0, events: 0, dropped: 0, watchedDirs: 0 };
  private readonly maxRoots: number;
  private readonly overflowEvents: number;
  private readonly roots = new Map<string, WatchedRoot<T>>();
  private readonly refused = new Map<string, string>();
  private cookieWatch: FSWatcher | undefined;
  private readonly cookies = new Map<string, () => void>();
  private cookieSeq = 0;
  private burst = 0;
  private closed = false;

  constructor(private readonly opts: ContextWatchOptions) {
    this.maxRoots = opts.maxRoots ?? 8;
    this.maxDirs = opts.maxDirs ?? 20_000;
    this.overflowEvents = opts.overflowEvents ?? Math.floor(queueLimit() / 2);
  }

  async open(root: string, opts: { signal?: AbortSignal } = {}): Promise<WatchedTree<T> | undefined> {
    if (this.closed || this.refused.has(root)) return undefined;
    const seen = await this.barrier(opts.signal);
    opts.signal?.throwIfAborted();
    if (!seen) {
      for (const r of [...this.roots.values()]) this.drop(r, 'the cookie event did not arrive', false);
      return undefined;
    }
    let r = this.roots.get(root);
    if (!r || r.dead) {
      r = new WatchedRoot<T>(root, this);
      if (!lstatOrUndefined(root)?.isDirectory() || !r.watchDir('')) return undefined;
    }
    this.roots.delete(root);
    this.roots.set(root, r);
    for (const [k, old] of this.roots) {
      if (this.roots.size <= this.maxRoots) break;
      if (k !== root) this.drop(old, 'least recently used', false);
    }
    return new Session(r, this);
  }

  counters(): WatchCounters {
    let dirs = 0;
    for (const r of this.roots.values()) dirs += r.dirs.size;
    return { ...this.count, watchedDirs: dirs };
  }

  close(): void {
    this.closed = true;
    for (const r of this.roots.values()) r.closeAll();
    this.roots.clear();
    this.cookieWatch?.close();
    for (const done of this.cookies.values()) done();
    fs.rmSync(this.opts.cookieDir, { recursive: true, force: true });
  }

  /** Forget a root (`giveUp`: and never watch it again in this process). */
  drop(r: WatchedRoot<T>, reason: string, giveUp: boolean): void {
    if (r.dead && !giveUp) return;
    r.closeAll();
    if (this.roots.get(r.root) === r) this.roots.delete(r.root);
    if (giveUp) this.refused.set(r.root, reason);
    this.count.dropped++;
    this.opts.onDrop?.(r.root, reason);
  }

  /** Every event counts toward a burst (all events libuv reads at once arrive in one turn of the loop). */
  noteEvent(): void {
    this.count.events++;
    if (this.burst++ === 0) setImmediate(() => (this.burst = 0));
    if (this.burst === this.overflowEvents) {
      for (const r of [...this.roots.values()]) this.drop(r, `${this.burst} events at once: the kernel queue may have overflowed`, false);
    }
  }

  /** Write a cookie file and wait for its event: every event queued before it has then been delivered. */
  private async barrier(signal?: AbortSignal): Promise<boolean> {
    try {
      if (!this.cookieWatch) {
        fs.mkdirSync(this.opts.cookieDir, { recursive: true });
        this.cookieWatch = fs.watch(this.opts.cookieDir, { persistent: false }, (_t, name) => {
          if (typeof name !== 'string') return;
          this.cookies.get(name)?.();
        });
        this.cookieWatch.on('error', () => {
          this.cookieWatch?.close();
          this.cookieWatch = undefined;
        });
      }
      const name = `cookie-${process.pid}-${++this.cookieSeq}`;
      const file = path.join(this.opts.cookieDir, name);
      const seen = new Promise<boolean>((resolve) => {
        const timer = setTimeout(() => finish(false), COOKIE_TIMEOUT_MS); // keeps the loop alive while waiting
        const onAbort = (): void => finish(false);
        const finish = (ok: boolean): void => {
          clearTimeout(timer);
          signal?.removeEventListener('abort', onAbort);
          this.cookies.delete(name);
          resolve(ok);
        };
        signal?.addEventListener('abort', onAbort);
        this.cookies.set(name, () => finish(true));
      });
      fs.writeFileSync(file, '');
      const ok = await seen;
      fs.rmSync(file, { force: true });
      return ok && !this.closed;
    } catch {
      // the directory went away (a cleaner) or cannot be written: watched again from scratch next time
      this.cookieWatch?.close();
      this.cookieWatch = undefined;
      return false;
    }
  }
}

function queueLimit(): number {
  try {
    const n = Number(fs.readFileSync('/proc/sys/fs/inotify/max_queued_events', 'utf8').trim());
    return Number.isFinite(n) && n > 0 ? n : 16384;
  } catch {
    return 16384;
  }
}

/**
 * Watched source trees for a long-lived process (the one-shot CLI walks every time).
 *
 * @example
 * const watch = createContextWatch<ResolvedSources>({ cookieDir: path.join(root, 'tmp', 'watch') });
 * await resolveSources({ root: contextDir, sources: ['.'], watch });
 */
export function createContextWatch<T>(opts: ContextWatchOptions): ContextWatch<T> {
  return new FsWatchContexts<T>(opts);
}
