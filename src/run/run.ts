import { promises as fsp } from 'node:fs';
import { resolveInside } from '../context/index.js';
import { BuildError } from '../errors/index.js';
import type { ExecMount, ExecNetwork, PortForward } from '../executor/index.js';
import { holdImage, imageSnapshots, loadLocalImage, registerLayers, type State } from '../engine/index.js';
import { createVolume, useVolume } from './volumes.js';

/** A `-v` of `kiln run`: a named volume or a host directory, at a path in the container. */
export interface VolumeSpec {
  /** volume name, or an absolute host path for a bind mount */
  source: string;
  target: string;
  readonly?: boolean;
}

/** Options of {@link runContainer}. */
export interface RunContainerOptions {
  state: State;
  image: string;
  /** replaces the image's CMD (the ENTRYPOINT stays) */
  cmd?: string[];
  /** replaces the image's ENTRYPOINT (`[]` clears it) */
  entrypoint?: string[];
  /** `KEY=VALUE` entries on top of the image's Env (a bare `KEY` takes the caller's value) */
  env?: string[];
  workdir?: string;
  user?: string;
  network?: ExecNetwork;
  volumes?: VolumeSpec[];
  hostname?: string;
  /** `-t`: a pseudo-terminal (stdout and stderr arrive together through `onStdout`) */
  tty?: boolean;
  /** `-i`: `inherit` passes kiln's stdin; `open` keeps a pipe open that is never written (detached `-i`) */
  stdin?: 'inherit' | 'open';
  /** `-p` with the isolated network */
  portForwards?: PortForward[];
  /** called once the container's process runs, with its host pid and the command it runs (ENTRYPOINT + CMD) */
  onStart?: (info: { pid: number; args: string[] }) => void;
  /** keep the container's writes: its upper directory is moved to this (absent) path when it exits */
  keepUpperIn?: string;
  onStdout?: (chunk: Buffer) => void;
  onStderr?: (chunk: Buffer) => void;
  signal?: AbortSignal;
}

/**
 * Parse a `-v` value: `NAME:/path[:ro|rw]` (named volume) or `/host/dir:/path[:ro|rw]` (bind).
 *
 * @example
 * parseVolumeSpec('pkgs:/cache'); // { source: 'pkgs', target: '/cache' }
 */
export function parseVolumeSpec(spec: string): VolumeSpec {
  const parts = spec.split(':');
  if (parts.length < 2 || parts.length > 3 || !parts[0] || !parts[1]) {
    throw new BuildError('ERR_KILN_ARGUMENT', `-v ${spec}: expected NAME:/path or /host/path:/path, optionally :ro`);
  }
  const [source, target, mode] = parts as [string, string, string | undefined];
  if (!target.startsWith('/')) throw new BuildError('ERR_KILN_ARGUMENT', `-v ${spec}: the container path must be absolute`);
  if (mode !== undefined && mode !== 'ro' && mode !== 'rw') throw new BuildError('ERR_KILN_ARGUMENT', `-v ${spec}: mode must be ro or rw`);
  return { source, target, ...(mode === 'ro' ? { readonly: true } : {}) };
}

/**
 * Run an image in a container with no daemon: an overlay over the image's layers, the OCI runtime, named volumes. The
 * container's own writes are discarded when it exits (unless `keepUpperIn`); volumes keep theirs. Returns the
 * process's exit code.
 *
 * @example
 * const code = await runContainer({ state, image: 'busybox', cmd: ['ls', '/cache'], volumes: [{ source: 'pkgs', target: '/cache' }] });
 */
export async function runContainer(opts: RunContainerOptions): Promise<number> {
  const s = opts.state;
  const img = await loadLocalImage(s, opts.image);
  registerLayers(s, img.manifest, img.config);
  const c = img.config.config ?? {};
  const entrypoint = opts.entrypoint ?? c.Entrypoint ?? [];
  const cmd = opts.cmd && opts.cmd.length ? opts.cmd : opts.entrypoint ? [] : (c.Cmd ?? []);
  const args = [...entrypoint, ...cmd];
  if (args.length === 0) throw new BuildError('ERR_KILN_ARGUMENT', `image "${opts.image}" has no CMD or ENTRYPOINT: give a command to run`);

  // a refs-only lease: prune/GC keep the image's layers, snapshots and blobs while the container runs
  const hold = await holdImage(s, img.manifestDigest, img.config.rootfs.diff_ids);
  const snap = await imageSnapshots(s, img.config.rootfs.diff_ids)
    .then((lowers) => s.snapshots.prepare({ lowers }))
    .catch((err: unknown) => {
      hold.release();
      throw err;
    });
  const cleanups: Array<() => Promise<void>> = [];
  try {
    await snap.mount();
    const mounts: ExecMount[] = [];
    for (const v of opts.volumes ?? []) mounts.push(await volumeMount({ state: s, spec: v, rootfs: snap.mountpoint, cleanups }));
    const res = await s.executor.run({
      rootfs: snap.mountpoint,
      args,
      env: mergeEnv(c.Env ?? [], opts.env ?? []),
      cwd: opts.workdir || c.WorkingDir || '/',
      user: opts.user ?? c.User ?? '',
      mounts,
      network: opts.network ?? 'host',
      ...(opts.hostname ? { hostname: opts.hostname } : {}),
      ...(opts.tty ? { tty: true } : {}),
      ...(opts.stdin ? { stdin: opts.stdin } : {}),
      ...(opts.portForwards?.length ? { portForwards: opts.portForwards } : {}),
      ...(opts.onStart ? { onStart: ({ pid }: { pid: number }) => opts.onStart?.({ pid, args }) } : {}),
      ...(opts.onStdout ? { onStdout: opts.onStdout } : {}),
      ...(opts.onStderr ? { onStderr: opts.onStderr } : {}),
      ...(opts.signal ? { signal: opts.signal } : {}),
    });
    return res.exitCode;
  } finally {
    for (const f of cleanups.reverse()) await f().catch(() => undefined);
    if (opts.keepUpperIn) {
      await snap.unmount().catch(() => undefined);
      await fsp.rename(snap.upperDir, opts.keepUpperIn).catch(() => undefined);
    }
    // what is left of the snapshot (all of it without keepUpperIn) is discarded
    await snap.release();
    hold.release();
  }
}

async function volumeMount(opts: { state: Pick<State, 'root'>; spec: VolumeSpec; rootfs: string; cleanups: Array<() => Promise<void>> }): Promise<ExecMount> {
  const { spec } = opts;
  if (spec.source.startsWith('/')) {
    const st = await fsp.stat(spec.source).catch(() => undefined);
    if (!st) throw new BuildError('ERR_KILN_ARGUMENT', `-v ${spec.source}:${spec.target}: the host path does not exist`);
    return { type: 'bind', source: spec.source, destination: spec.target, readonly: spec.readonly === true };
  }
  const vol = await createVolume({ stateDir: opts.state.root, name: spec.source, ifMissing: true });
  opts.cleanups.push(await useVolume({ stateDir: opts.state.root, name: spec.source }));
  // like Docker: a new, empty volume starts with what the image has at the mount path
  if (vol.createdNow) await copyUp({ rootfs: opts.rootfs, target: spec.target, to: vol.mountpoint });
  return { type: 'bind', source: vol.mountpoint, destination: spec.target, readonly: spec.readonly === true };
}

/** Copy an image directory's contents and attributes into an empty volume (nothing when it is not a directory). */
async function copyUp(opts: { rootfs: string; target: string; to: string }): Promise<void> {
  let from: string;
  try {
    // symlinks resolve inside the rootfs
    from = resolveInside(opts.rootfs, opts.target, { followSymlinks: true });
  } catch {
    return;
  }
  const st = await fsp.stat(from).catch(() => undefined);
  if (!st?.isDirectory()) return;
  await fsp.cp(from, opts.to, { recursive: true, verbatimSymlinks: true, preserveTimestamps: true, force: true });
  await fsp.chown(opts.to, st.uid, st.gid);
  await fsp.chmod(opts.to, st.mode & 0o7777);
}

/** Image env with overrides: `K=V` sets, a bare `K` takes the caller's value (dropped when unset). */
export function mergeEnv(base: string[], overrides: string[]): string[] {
  const out = [...base];
  for (const o of overrides) {
    const eq = o.indexOf('=');
    const k = eq < 0 ? o : o.slice(0, eq);
    const entry = eq < 0 ? (process.env[k] !== undefined ? `${k}=${process.env[k]}` : undefined) : o;
    const i = out.findIndex((e) => e.startsWith(`${k}=`));
    if (entry === undefined) continue;
    if (i >= 0) out[i] = entry;
    else out.push(entry);
  }
  return out;
}
