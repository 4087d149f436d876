import { execFile } from 'node:child_process';
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { BuildError } from '../../errors/index.js';
import { MNT_DETACH, mount, umount } from '../../sys/index.js';
import type { ActiveSnapshot, Snapshotter } from '../types.js';

const run = promisify(execFile);

/** Where snapshot rows live; the metadata database implements it. */
export interface SnapshotIndex {
  createSnapshot(diffId: string | null): number;
  commitSnapshot(id: number, diffId: string): void;
  getSnapshot(id: number): { id: number; state: string } | undefined;
  listSnapshots(): Array<{ id: number; state: string }>;
  deleteSnapshot(id: number): void;
}

export interface OverlaySnapshotterOptions {
  /** folder for snapshot dirs: `<root>/<id>` committed, `<root>/w<id>` overlay workdirs, `<root>/m<id>` mountpoints */
  root: string;
  index: SnapshotIndex;
}

/**
 * mount(2) takes one page of options; longer ones, and a root whose path holds an option separator (`,` `:` `\`),
 * go through `mount` run in the snapshot folder (relative paths).
 */
const MOUNT_DATA_MAX = 4000;

/** Unmount; a busy mount is detached instead (it goes when its last user does). */
function unmountOrDetach(mountpoint: string): void {
  try {
    umount(mountpoint);
  } catch {
    umount(mountpoint, MNT_DETACH);
  }
}

function detach(mountpoint: string): void {
  try {
    umount(mountpoint, MNT_DETACH);
  } catch {
    /* gone already */
  }
}

/**
 * Snapshots as plain directories stacked with overlayfs. Committed snapshots are overlay lowerdirs, mounted by
 * mount(2) with absolute paths; a chain too long for one option page (see MOUNT_DATA_MAX) is mounted by `mount` run
 * with cwd = root and relative lowerdir paths, so hundreds of layers fit.
 */
export async function createOverlaySnapshotter(opts: OverlaySnapshotterOptions): Promise<Snapshotter> {
  const root = opts.root;
  const index = opts.index;
  await fsp.mkdir(root, { recursive: true });
  const emptyDir = path.join(root, 'empty');
  await fsp.mkdir(emptyDir, { recursive: true });
  const dir = (id: number): string => path.join(root, String(id));

  async function rmrf(p: string): Promise<void> {
    await fsp.rm(p, { recursive: true, force: true, maxRetries: 3 });
  }

  async function prepare(o: { lowers: number[] }): Promise<ActiveSnapshot> {
    const id = index.createSnapshot(null);
    const upperDir = dir(id);
    const workDir = path.join(root, `w${id}`);
    const mountpoint = path.join(root, `m${id}`);
    await fsp.mkdir(upperDir, { recursive: true });
    await fsp.mkdir(workDir, { recursive: true });
    await fsp.mkdir(mountpoint, { recursive: true });
    let mounted = false;
    let committed = false;
    const lowerIds = o.lowers.length > 0 ? [...o.lowers].reverse().map(String) : ['empty'];
    const snap: ActiveSnapshot = {
      mountpoint,
      upperDir,
      lowerDirs: [...o.lowers].reverse().map(dir),
      async mount() {
        if (mounted) return;
        const options = (at: (name: string) => string): string =>
          `lowerdir=${lowerIds.map(at).join(':')},upperdir=${at(String(id))},workdir=${at(`w${id}`)},index=off,redirect_dir=off,metacopy=off`;
        const absolute = options((name) => path.join(root, name));
        try {
          if (absolute.length <= MOUNT_DATA_MAX && !/[,:\\]/.test(root)) mount('overlay', mountpoint, 'overlay', 0, absolute);
          else await run('mount', ['-t', 'overlay', 'overlay', '-o', options((name) => name), mountpoint], { cwd: root });
        } catch (err) {
          throw new BuildError('ERR_KILN_EXEC_RUNTIME', `cannot mount overlayfs: ${(err as { stderr?: string }).stderr?.trim() || (err as Error).message}`, {
            hint: 'kiln needs root and overlayfs',
          });
        }
        mounted = true;
      },
      async unmount() {
        if (!mounted) return;
        unmountOrDetach(mountpoint);
        mounted = false;
      },
      async commit() {
        await snap.unmount();
        await rmrf(workDir);
        await fsp.rmdir(mountpoint).catch(() => undefined);
        committed = true;
        return id;
      },
      async release() {
        await snap.unmount().catch(() => undefined);
        await rmrf(workDir);
        await fsp.rmdir(mountpoint).catch(() => undefined);
        if (!committed) {
          await rmrf(upperDir);
          index.deleteSnapshot(id);
        }
      },
      async [Symbol.asyncDispose]() {
        await snap.release();
      },
    };
    return snap;
  }

  async function create(): Promise<{ id: number; dir: string; commit(): Promise<number>; abort(): Promise<void> }> {
    const id = index.createSnapshot(null);
    const d = dir(id);
    await rmrf(d);
    await fsp.mkdir(d, { recursive: true });
    return {
      id,
      dir: d,
      commit: async () => id,
      abort: async () => {
        await rmrf(d);
        index.deleteSnapshot(id);
      },
    };
  }

  async function cleanup(): Promise<void> {
    const mounts = await fsp.readFile('/proc/self/mounts', 'utf8').catch(() => '');
    for (const s of index.listSnapshots()) {
      if (s.state === 'committed' || isOwnedByLiveProcess(s)) continue;
      const mp = path.join(root, `m${s.id}`);
      if (mounts.includes(` ${mp} `)) detach(mp);
      for (const p of [dir(s.id), path.join(root, `w${s.id}`), mp]) await rmrf(p);
      index.deleteSnapshot(s.id);
    }
    for (const name of await fsp.readdir(root).catch(() => [] as string[])) {
      const m = /^([wm]?)(\d+)$/.exec(name);
      if (!m || index.getSnapshot(Number(m[2]))) continue;
      const p = path.join(root, name);
      if (mounts.includes(` ${p} `)) detach(p);
      await rmrf(p);
    }
  }

  return {
    dir,
    prepare,
    create,
    async remove(id: number) {
      await rmrf(dir(id));
      index.deleteSnapshot(id);
    },
    cleanup,
  };
}

/** A preparing snapshot's state is `preparing:<pid>`; it stays while that process lives. */
function isOwnedByLiveProcess(s: { id: number; state: string }): boolean {
  const pid = Number(s.state.split(':')[1]);
  if (!pid || pid === process.pid) return pid === process.pid;
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
