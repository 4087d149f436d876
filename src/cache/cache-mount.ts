import { createHash, randomBytes } from 'node:crypto';
import { promises as fsp, readFileSync } from 'node:fs';
import path from 'node:path';
import { BuildError } from '../errors/index.js';
import type { MountDef } from '../graph/index.js';
import { pidAlive } from '../proc/index.js';

/**
 * Cache mounts (`RUN --mount=type=cache`) live under `<state>/cache-mounts/<hash of key>/`:
 *   data/        the contents, shared by every build on the machine
 *   info.json    { id, key, seed?, created }
 *   uses.log     one line per use: `<epoch ms> <build id>` (appended, so concurrent writers never lose lines)
 *   lock/        held by the one writer of a `locked` mount (and the first user of a `private` one); owner pid inside
 *   users/       one file per current user (`<pid>-<rand>`), so removal can refuse a mount in use
 *   private-*    throwaway copies for concurrent `private` users
 *   remote.json  the shared cache's index last merged into data/ (`--cache-registry`, src/cache-io/mounts.ts)
 *   tmp/         scratch space of the shared cache's imports
 * Contents never enter a layer or a cache key.
 */

const CACHE_MOUNTS = 'cache-mounts';
const LOCK_POLL_MS = 50;
const STALE_LOCK_MS = 10_000;
const USES_LOG_COMPACT_BYTES = 256 * 1024;
const USES_LOG_KEEP_LINES = 500;

/** An open cache mount: mount `dir`, then `release()` when the step ends. */
export interface CacheMountHandle {
  dir: string;
  release(): Promise<void>;
}

/** Options of {@link lockCacheMount}. */
export interface LockCacheMountOptions {
  stateDir: string;
  def: MountDef;
  /**
   * For a mount with `from=`: identity of the seed (the source vertex's output id). As in BuildKit, a seeded cache is
   * a different cache per seed, so a changed stage gives a fresh cache holding its new files.
   */
  seedKey?: string;
  /** Copies the seed into an empty directory; called only when the cache is created. */
  seed?: (dir: string) => Promise<void>;
  /** recorded in the use log (`kiln cache ls` shows the builds that used a mount) */
  buildId?: string;
  /**
   * Called once the data directory exists, before the step's lock is taken: the shared cache (`--cache-registry`)
   * adds what the team has and this machine lacks here, and notes the mount for the export after the build.
   */
  onOpen?: (m: CacheMountOpened) => Promise<void>;
  signal?: AbortSignal;
}

/** A cache mount a step is opening, as {@link LockCacheMountOptions.onOpen} is told. */
export interface CacheMountOpened {
  id: string;
  /** the storage key ({@link cacheMountKey}): what the shared cache is keyed by */
  key: string;
  /** the contents, shared by every build on the machine */
  dataDir: string;
  /** a scratch directory on the same filesystem */
  tmpDir: string;
  /** a small file of the mount's own, for the shared cache's bookkeeping */
  stateFile: string;
}

/** One cache mount as `kiln cache ls` shows it. */
export interface CacheMountInfo {
  /** the mount's id (default: its target path) */
  id: string;
  /** the storage key: the id, plus `:<seed>` for a mount seeded with from= */
  key: string;
  /** directory holding the contents */
  dir: string;
  /** bytes on disk (hardlinked files counted once) */
  size: number;
  created: number;
  lastUsed: number;
  uses: number;
  /** most recent builds that used it, newest first (at most 20) */
  builds: string[];
  /** a live process is using it right now */
  inUse: boolean;
}

/**
 * Storage key of a cache mount: its id, plus the seed identity when seeded with `from=`. As in BuildKit, an explicit
 * uid, gid or mode gives the cache its own base directory, so `uid=10` and no uid are two caches.
 */
export function cacheMountKey(def: Pick<MountDef, 'id' | 'target' | 'source' | 'uid' | 'gid' | 'mode'>, seedKey?: string): string {
  const id = def.id || def.target;
  if (seedKey) return `${id}:${seedKey}:${def.source ?? '/'}`;
  if (def.uid === undefined && def.gid === undefined && def.mode === undefined) return id;
  return `${id}:owner=${def.uid ?? 0}:${def.gid ?? 0}:${(def.mode ?? 0o755).toString(8)}`;
}

/** Folder of one cache mount key under the state directory. */
export function cacheMountDir(stateDir: string, key: string): string {
  return path.join(stateDir, CACHE_MOUNTS, createHash('sha256').update(key).digest('hex').slice(0, 32));
}

/** Try to take the lock directory; a lock whose owner died is broken. */
async function tryLock(lockDir: string): Promise<boolean> {
  try {
    await fsp.mkdir(lockDir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    await breakIfStale(lockDir);
    return false;
  }
  await fsp.writeFile(path.join(lockDir, 'owner'), String(process.pid));
  return true;
}

async function breakIfStale(lockDir: string): Promise<void> {
  let owner = 0;
  try {
    owner = Number(readFileSync(path.join(lockDir, 'owner'), 'utf8'));
  } catch {
    // being created right now, or its creator died between mkdir and write
    const st = await fsp.stat(lockDir).catch(() => undefined);
    if (st && Date.now() - st.mtimeMs > STALE_LOCK_MS) await fsp.rm(lockDir, { recursive: true, force: true });
    return;
  }
  if (!pidAlive(owner)) await fsp.rm(lockDir, { recursive: true, force: true });
}

/** Create `data` atomically: build it in a temp dir (seed, mode, owner), then rename; a concurrent creator wins. */
async function ensureData(base: string, opts: LockCacheMountOptions): Promise<void> {
  const data = path.join(base, 'data');
  if (await exists(data)) return;
  const tmp = path.join(base, `creating-${process.pid}-${randomBytes(6).toString('hex')}`);
  await fsp.mkdir(tmp);
  try {
    if (opts.seed) await opts.seed(tmp);
    await fsp.chmod(tmp, opts.def.mode ?? 0o755);
    await chownAsRoot(tmp, opts.def);
    await fsp.rename(tmp, data).catch((err: NodeJS.ErrnoException) => {
      if (err.code !== 'ENOTEMPTY' && err.code !== 'EEXIST') throw err;
    });
  } finally {
    await fsp.rm(tmp, { recursive: true, force: true });
  }
}

/**
 * Open a cache mount for one RUN: `locked` waits for the only writer, `private` gets a fresh throwaway directory while
 * another step holds it, `shared` is used by all at once. Contents live under the state dir and never enter a layer.
 *
 * @example
 * const cm = await lockCacheMount({ stateDir, def: { type: 'cache', target: '/var/cache/apt', sharing: 'locked' } });
 * try { ...mount cm.dir... } finally { await cm.release(); }
 */
export async function lockCacheMount(opts: LockCacheMountOptions): Promise<CacheMountHandle> {
  const { def } = opts;
  const id = def.id || def.target;
  const key = cacheMountKey(def, opts.seedKey);
  const base = cacheMountDir(opts.stateDir, key);
  await fsp.mkdir(path.join(base, 'users'), { recursive: true });
  await writeInfoOnce(base, { id, key, ...(opts.seedKey ? { seed: opts.seedKey } : {}), created: Date.now() });
  const user = path.join(base, 'users', `${process.pid}-${randomBytes(6).toString('hex')}`);
  await fsp.writeFile(user, '');
  const dropUser = (): Promise<void> => fsp.rm(user, { force: true });
  try {
    await ensureData(base, opts);
    await recordUse(base, opts.buildId);
    if (opts.onOpen) await opts.onOpen({ id, key, dataDir: path.join(base, 'data'), tmpDir: path.join(base, 'tmp'), stateFile: path.join(base, 'remote.json') });
    const data = path.join(base, 'data');
    const lockDir = path.join(base, 'lock');
    const sharing = def.sharing ?? 'shared';
    if (sharing === 'locked') {
      while (!(await tryLock(lockDir))) {
        opts.signal?.throwIfAborted();
        await new Promise((r) => setTimeout(r, LOCK_POLL_MS));
      }
      return { dir: data, release: async () => (await fsp.rm(lockDir, { recursive: true, force: true }), await dropUser()) };
    }
    if (sharing === 'private') {
      if (await tryLock(lockDir)) return { dir: data, release: async () => (await fsp.rm(lockDir, { recursive: true, force: true }), await dropUser()) };
      const priv = path.join(base, `private-${process.pid}-${randomBytes(6).toString('hex')}`);
      await fsp.mkdir(priv, { mode: def.mode ?? 0o755 });
      await fsp.chmod(priv, def.mode ?? 0o755);
      await chownAsRoot(priv, def);
      return { dir: priv, release: async () => (await fsp.rm(priv, { recursive: true, force: true }), await dropUser()) };
    }
    return { dir: data, release: dropUser };
  } catch (err) {
    await dropUser();
    throw err;
  }
}

/** Give a cache directory its owner (uid/gid, default root); a non-root kiln keeps its own ids. */
async function chownAsRoot(dir: string, def: MountDef): Promise<void> {
  if (process.getuid?.() !== 0) return;
  await fsp.chown(dir, def.uid ?? 0, def.gid ?? 0);
}

async function writeInfoOnce(base: string, info: { id: string; key: string; seed?: string; created: number }): Promise<void> {
  const f = path.join(base, 'info.json');
  if (await exists(f)) return;
  const tmp = `${f}.${process.pid}.${randomBytes(4).toString('hex')}`;
  await fsp.writeFile(tmp, JSON.stringify(info));
  await fsp.rename(tmp, f);
}

async function recordUse(base: string, buildId: string | undefined): Promise<void> {
  const log = path.join(base, 'uses.log');
  await fsp.appendFile(log, `${Date.now()} ${buildId ?? '-'}\n`);
  const st = await fsp.stat(log);
  if (st.size > USES_LOG_COMPACT_BYTES) {
    const lines = (await fsp.readFile(log, 'utf8')).split('\n').filter(Boolean);
    const tmp = `${log}.${process.pid}.${randomBytes(4).toString('hex')}`;
    await fsp.writeFile(tmp, `${lines.slice(-USES_LOG_KEEP_LINES).join('\n')}\n`);
    await fsp.rename(tmp, log);
  }
}

/**
 * Every cache mount in the state directory, newest use first.
 *
 * @example
 * for (const m of await listCacheMounts({ stateDir: '/var/lib/kiln' })) console.log(m.id, m.size);
 */
export async function listCacheMounts(opts: { stateDir: string; signal?: AbortSignal }): Promise<CacheMountInfo[]> {
  const root = path.join(opts.stateDir, CACHE_MOUNTS);
  const out: CacheMountInfo[] = [];
  for (const name of await fsp.readdir(root).catch(() => [] as string[])) {
    opts.signal?.throwIfAborted();
    const base = path.join(root, name);
    const info = await readJson(path.join(base, 'info.json'));
    if (!info) continue;
    const uses = (await fsp.readFile(path.join(base, 'uses.log'), 'utf8').catch(() => ''))
      .split('\n')
      .filter(Boolean)
      .map((l) => {
        const sp = l.indexOf(' ');
        return { at: Number(l.slice(0, sp)), build: l.slice(sp + 1) };
      });
    const builds: string[] = [];
    for (let i = uses.length - 1; i >= 0 && builds.length < 20; i--) {
      const b = uses[i]!.build;
      if (b !== '-' && !builds.includes(b)) builds.push(b);
    }
    out.push({
      id: String(info.id),
      key: String(info.key ?? info.id),
      dir: path.join(base, 'data'),
      size: await diskUsage(base),
      created: Number(info.created ?? 0),
      lastUsed: uses.length ? uses[uses.length - 1]!.at : Number(info.created ?? 0),
      uses: uses.length,
      builds,
      inUse: await inUse(base),
    });
  }
  return out.sort((a, b) => b.lastUsed - a.lastUsed);
}

/**
 * Remove cache mounts by id (every seeded variant of that id too) or by storage key. A mount in use by a live
 * process is refused unless `force`. Returns the keys removed; an unknown id is a not-found error.
 *
 * @example
 * await removeCacheMounts({ stateDir, ids: ['/var/cache/apt'] });
 */
export async function removeCacheMounts(opts: { stateDir: string; ids: string[]; force?: boolean; signal?: AbortSignal }): Promise<string[]> {
  const all = await listCacheMounts({ stateDir: opts.stateDir, ...(opts.signal ? { signal: opts.signal } : {}) });
  const picked: CacheMountInfo[] = [];
  for (const id of opts.ids) {
    const hits = all.filter((m) => m.id === id || m.key === id);
    if (hits.length === 0) throw new BuildError('ERR_KILN_CACHE_MOUNT_NOT_FOUND', `no cache mount with id "${id}"`);
    for (const h of hits) if (!picked.includes(h)) picked.push(h);
  }
  const busy = picked.filter((m) => m.inUse);
  if (busy.length && !opts.force) {
    throw new BuildError('ERR_KILN_CACHE_MOUNT_IN_USE', `cache mount "${busy[0]!.id}" is in use by a running build`);
  }
  const removed: string[] = [];
  for (const m of picked) {
    const base = path.dirname(m.dir);
    // rename first, so a build starting now sees no half-deleted cache
    const trash = path.join(opts.stateDir, 'tmp', `cache-mount-rm-${randomBytes(6).toString('hex')}`);
    await fsp.mkdir(path.dirname(trash), { recursive: true });
    await fsp.rename(base, trash);
    await fsp.rm(trash, { recursive: true, force: true });
    removed.push(m.key);
  }
  return removed;
}

async function inUse(base: string): Promise<boolean> {
  for (const u of await fsp.readdir(path.join(base, 'users')).catch(() => [] as string[])) {
    if (pidAlive(Number(u.split('-')[0]))) return true;
    await fsp.rm(path.join(base, 'users', u), { force: true }).catch(() => undefined);
  }
  return false;
}

/** Bytes on disk under `dir` (st_blocks; hardlinks once). */
export async function diskUsage(dir: string): Promise<number> {
  const seen = new Set<string>();
  let total = 0;
  const walk = async (p: string): Promise<void> => {
    const st = await fsp.lstat(p).catch(() => undefined);
    if (!st) return;
    const k = `${st.dev}:${st.ino}`;
    if (seen.has(k)) return;
    seen.add(k);
    total += st.blocks * 512;
    if (st.isDirectory()) for (const n of await fsp.readdir(p).catch(() => [] as string[])) await walk(path.join(p, n));
  };
  await walk(dir);
  return total;
}

async function readJson(f: string): Promise<Record<string, unknown> | undefined> {
  try {
    return JSON.parse(await fsp.readFile(f, 'utf8')) as Record<string, unknown>;
  } catch {
    return undefined;
  }
}

async function exists(p: string): Promise<boolean> {
  return fsp.lstat(p).then(
    () => true,
    () => false,
  );
}
