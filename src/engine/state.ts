import { accessSync, constants as fsConstants, mkdirSync, promises as fsp, readFileSync, rmSync, statSync, statfsSync } from 'node:fs';
import path from 'node:path';
import { cleanIngest, createLocalStore, type ContentStore } from '../store/index.js';
import { openMetadata, type BuildRepo, type Metadata } from '../metadata/index.js';
import { BuildError, isNoSpace } from '../errors/index.js';
import { createOverlaySnapshotter, type Snapshotter } from '../snapshot/index.js';
import { createRuncExecutor, type Executor } from '../executor/index.js';
import { ownerAlive, processStartTime } from '../proc/index.js';
import { cleanSecretMounts } from '../ops/index.js';
import { defaultRoot } from '../stateroot/index.js';

/** Everything kiln keeps, under one state directory. */
export interface State {
  root: string;
  store: ContentStore;
  db: Metadata;
  snapshots: Snapshotter;
  executor: Executor;
  /**
   * Give back the space kept in reserve under the root (see {@link RESERVE_BYTES}), so that on a full disk the
   * records of a failure, `kiln prune`, `rmi` and `du` can still be written. Returns the bytes freed.
   */
  releaseReserve(): number;
  close(): void;
}

/** The content store, for a helper that reads or writes blobs and nothing else of a {@link State}. */
export interface Blobs {
  store: ContentStore;
}

/** Some record roles of a {@link State}: what a helper takes instead of the whole state (`Records<'builds'>`). */
export interface Records<K extends keyof Metadata> {
  db: Pick<Metadata, K>;
}

/**
 * Room kept under the root as one plain file (`reserved-space`), given back when the disk is full. Measured on a
 * 300 MB ext4 filled to 100%: SQLite in WAL mode cannot even open the database (it must create the -wal and -shm
 * files: SQLITE_IOERR / SQLITE_FULL), so `du`, `images`, `rmi` and `prune` all failed; with this file deleted first
 * they work, and prune then frees kiln's own space. 16 MiB holds the WAL of a prune of tens of thousands of records.
 */
export const RESERVE_BYTES = 16 * 1024 * 1024;
const RESERVE_FILE = 'reserved-space';

function freeBytes(dir: string): number {
  try {
    const st = statfsSync(dir);
    return st.bavail * st.bsize;
  } catch {
    return Number.POSITIVE_INFINITY;
  }
}

function releaseReserve(root: string): number {
  const file = path.join(root, RESERVE_FILE);
  let size = 0;
  try {
    size = statSync(file).size;
  } catch {
    return 0;
  }
  rmSync(file, { force: true });
  return size;
}

/** (Re)create the reserve when the disk has room for it and as much again; never takes the last free space. */
async function ensureReserve(root: string): Promise<void> {
  const file = path.join(root, RESERVE_FILE);
  const have = await fsp.stat(file).then((st) => st.size, () => -1);
  if (have === RESERVE_BYTES) return;
  if (freeBytes(root) < 2 * RESERVE_BYTES + Math.max(have, 0)) return;
  const tmp = `${file}.${process.pid}.tmp`;
  try {
    // real blocks, not a sparse file: writing zeros is what makes the space ours
    const fh = await fsp.open(tmp, 'w', 0o600);
    try {
      const chunk = Buffer.alloc(1024 * 1024);
      for (let off = 0; off < RESERVE_BYTES; off += chunk.length) await fh.write(chunk, 0, chunk.length, off);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await fsp.rename(tmp, file);
  } catch {
    await fsp.rm(tmp, { force: true }).catch(() => undefined);
  }
}

/** `--root`, then `KILN_ROOT`, then /var/lib/kiln for root, else `$XDG_DATA_HOME/kiln` (src/stateroot). */
export { defaultRoot };

/**
 * Open (creating if needed) the state directory. Leftovers of a killed build — temp blobs, uncommitted snapshots,
 * stale containers and mounts — are removed; nothing half-written is ever trusted because records are written only
 * after the data they point to is committed.
 */
export async function openState(opts: { root?: string; cleanup?: boolean } = {}): Promise<State> {
  const root = path.resolve(opts.root ?? defaultRoot());
  try {
    mkdirSync(root, { recursive: true, mode: 0o711 });
    await fsp.mkdir(path.join(root, 'tmp'), { recursive: true });
    // an existing root (and tmp) that this user may only read passes the mkdirs
    accessSync(root, fsConstants.W_OK);
    accessSync(path.join(root, 'tmp'), fsConstants.W_OK);
  } catch (err) {
    throw notWritable(root, err);
  }
  // a full disk: give back the reserve first, so the database can open (and prune can free space)
  if (freeBytes(root) < 1024 * 1024) releaseReserve(root);
  const store = await createLocalStore({ root: path.join(root, 'content') });
  let db: Metadata;
  try {
    db = openMetadata(path.join(root, 'metadata.db'));
  } catch (err) {
    if (!isNoSpace(err) || releaseReserve(root) === 0) throw err;
    db = openMetadata(path.join(root, 'metadata.db'));
  }
  const snapshots = await createOverlaySnapshotter({ root: path.join(root, 'snapshots'), index: db.layers });
  const executor = createRuncExecutor({ stateDir: path.join(root, 'exec') });
  if (opts.cleanup !== false) {
    await cleanIngest(store.root);
    await executor.cleanup().catch(() => undefined);
    await snapshots.cleanup();
    // secret tmpfs mounts of a killed build: unmounted before anything else looks at tmp
    await cleanSecretMounts(path.join(root, 'tmp')).catch(() => undefined);
    await cleanTmp(path.join(root, 'tmp'));
    markInterruptedBuilds(db.builds);
  }
  await ensureReserve(root);
  return { root, store, db, snapshots, executor, releaseReserve: () => releaseReserve(root), close: () => db.close() };
}

/** A user name for a uid, from /etc/passwd (or just the number). */
function userName(uid: number): string {
  try {
    for (const line of readFileSync('/etc/passwd', 'utf8').split('\n')) {
      const f = line.split(':');
      if (f[2] === String(uid)) return `${f[0]} (uid ${uid})`;
    }
  } catch {
    /* no passwd file: the number alone */
  }
  return `uid ${uid}`;
}

/** The state directory cannot be created or written: say whose it is (or whose the folder above it is) and what to do. */
function notWritable(root: string, err: unknown): unknown {
  const code = (err as NodeJS.ErrnoException).code;
  if (code !== 'EACCES' && code !== 'EPERM' && code !== 'EROFS') return err;
  let dir = root;
  let st = statSync(dir, { throwIfNoEntry: false });
  while (!st && path.dirname(dir) !== dir) {
    dir = path.dirname(dir);
    st = statSync(dir, { throwIfNoEntry: false });
  }
  const me = process.getuid?.();
  const who = me === undefined ? '' : ` by ${userName(me)}`;
  const what = code === 'EROFS' ? 'is on a read-only file system' : `is not writable${who}`;
  const owner = st ? `${dir === root ? 'it' : `the folder above it, ${dir},`} belongs to ${userName(st.uid)} with mode ${(st.mode & 0o7777).toString(8).padStart(4, '0')}` : 'it cannot be inspected';
  return new BuildError('ERR_KILN_STATE_ROOT', `the state directory ${root} ${what}: ${owner}`, { cause: err, details: { root } });
}

async function cleanTmp(dir: string): Promise<void> {
  for (const name of await fsp.readdir(dir).catch(() => [] as string[])) {
    const p = path.join(dir, name);
    const st = await fsp.stat(p).catch(() => undefined);
    // other builds may be using fresh entries; anything older than a day is a leftover
    if (st && Date.now() - st.mtimeMs > 24 * 3600_000) await fsp.rm(p, { recursive: true, force: true });
  }
}

/**
 * Builds recorded as running whose process is gone (killed, crashed, power lost) are marked `interrupted`: a
 * build's owner is its process id and that process's start time, so a reused pid is not mistaken for it.
 */
function markInterruptedBuilds(builds: BuildRepo): void {
  for (const b of builds.listRunningBuilds()) {
    if (b.owner && recordOwnerAlive(b.owner)) continue;
    builds.finishBuildRecord({ id: b.id, status: 'interrupted', finished: Date.now(), error: 'the build process stopped before the build finished (killed or crashed)' });
  }
}

/** `pid:starttime` of this process, as build records store their owner. */
export function processOwner(pid = process.pid): string {
  return `${pid}:${processStartTime(pid) ?? ''}`;
}

/** `pid:starttime` as build records store it (an empty start time: the pid alone decides). */
function recordOwnerAlive(owner: string): boolean {
  const [pidText, startTime] = owner.split(':');
  return ownerAlive({ pid: Number(pidText), startTime: startTime ?? '' });
}
