import { randomBytes } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { BuildError } from '../errors/index.js';
import { diskUsage } from '../cache/index.js';

/**
 * Named volumes: `<state>/volumes/<name>/_data` holds the contents, `info.json` the name and creation time, and
 * `users/<pid>-<rand>` marks each container using it right now.
 */

/** A named volume as `kiln volume ls/inspect` shows it. */
export interface VolumeInfo {
  name: string;
  /** host directory mounted into containers */
  mountpoint: string;
  created: string;
  /** containers (processes) using it right now */
  inUse: boolean;
}

const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/;

function volumesRoot(stateDir: string): string {
  return path.join(stateDir, 'volumes');
}

/** Is `name` a valid volume name (Docker's rule: `[a-zA-Z0-9][a-zA-Z0-9_.-]*`)? */
export function isVolumeName(name: string): boolean {
  return NAME_RE.test(name) && name.length <= 255;
}

function checkName(name: string): void {
  if (!isVolumeName(name)) throw new BuildError('ERR_KILN_ARGUMENT', `invalid volume name "${name}" (letters, digits, "_", "." and "-", starting with a letter or digit)`);
}

/**
 * Create a volume. `ifMissing` returns the existing one instead of failing (what `kiln run -v NAME:/p` does).
 *
 * @example
 * const v = await createVolume({ stateDir: '/var/lib/kiln', name: 'pkgs' });
 */
export async function createVolume(opts: { stateDir: string; name: string; ifMissing?: boolean }): Promise<VolumeInfo & { createdNow: boolean }> {
  checkName(opts.name);
  const dir = path.join(volumesRoot(opts.stateDir), opts.name);
  await fsp.mkdir(volumesRoot(opts.stateDir), { recursive: true, mode: 0o700 });
  // build it aside and rename, so a half-made volume is never seen
  const tmp = path.join(volumesRoot(opts.stateDir), `.creating-${randomBytes(6).toString('hex')}`);
  await fsp.mkdir(path.join(tmp, '_data'), { recursive: true, mode: 0o755 });
  await fsp.writeFile(path.join(tmp, 'info.json'), JSON.stringify({ name: opts.name, created: new Date().toISOString() }));
  try {
    await fsp.rename(tmp, dir);
    return { ...(await inspectVolume({ stateDir: opts.stateDir, name: opts.name })), createdNow: true };
  } catch (err) {
    await fsp.rm(tmp, { recursive: true, force: true });
    const code = (err as NodeJS.ErrnoException).code;
    if (code !== 'ENOTEMPTY' && code !== 'EEXIST') throw err;
    if (!opts.ifMissing) throw new BuildError('ERR_KILN_VOLUME_EXISTS', `volume "${opts.name}" already exists`);
    return { ...(await inspectVolume({ stateDir: opts.stateDir, name: opts.name })), createdNow: false };
  }
}

/** One volume; not-found error when it does not exist. */
export async function inspectVolume(opts: { stateDir: string; name: string }): Promise<VolumeInfo> {
  checkName(opts.name);
  const dir = path.join(volumesRoot(opts.stateDir), opts.name);
  let info: { name: string; created: string };
  try {
    info = JSON.parse(await fsp.readFile(path.join(dir, 'info.json'), 'utf8')) as typeof info;
  } catch {
    throw new BuildError('ERR_KILN_VOLUME_NOT_FOUND', `no volume named "${opts.name}"`);
  }
  return { name: info.name, mountpoint: path.join(dir, '_data'), created: info.created, inUse: await volumeInUse(dir) };
}

/** Every volume, by name. */
export async function listVolumes(opts: { stateDir: string }): Promise<VolumeInfo[]> {
  const out: VolumeInfo[] = [];
  for (const name of (await fsp.readdir(volumesRoot(opts.stateDir)).catch(() => [] as string[])).sort()) {
    if (!isVolumeName(name)) continue;
    out.push(await inspectVolume({ stateDir: opts.stateDir, name }).catch(() => undefined as never));
  }
  return out.filter(Boolean);
}

/** Remove volumes; one in use is refused unless `force`. Returns the names removed. */
export async function removeVolumes(opts: { stateDir: string; names: string[]; force?: boolean }): Promise<string[]> {
  const vols = [];
  for (const n of opts.names) vols.push(await inspectVolume({ stateDir: opts.stateDir, name: n }));
  const busy = vols.find((v) => v.inUse);
  if (busy && !opts.force) throw new BuildError('ERR_KILN_VOLUME_IN_USE', `volume "${busy.name}" is in use by a running container`);
  for (const v of vols) {
    const dir = path.dirname(v.mountpoint);
    const trash = path.join(volumesRoot(opts.stateDir), `.removing-${randomBytes(6).toString('hex')}`);
    await fsp.rename(dir, trash);
    await fsp.rm(trash, { recursive: true, force: true });
  }
  return vols.map((v) => v.name);
}

/** Bytes on disk of each volume. */
export async function volumesDiskUsage(opts: { stateDir: string; names?: string[] }): Promise<Array<{ name: string; size: number }>> {
  const vols = opts.names?.length ? await Promise.all(opts.names.map((name) => inspectVolume({ stateDir: opts.stateDir, name }))) : await listVolumes(opts);
  const out = [];
  for (const v of vols) out.push({ name: v.name, size: await diskUsage(v.mountpoint) });
  return out;
}

/** Mark a volume in use by this process until the returned function is called. */
export async function useVolume(opts: { stateDir: string; name: string }): Promise<() => Promise<void>> {
  const users = path.join(volumesRoot(opts.stateDir), opts.name, 'users');
  await fsp.mkdir(users, { recursive: true });
  const f = path.join(users, `${process.pid}-${randomBytes(6).toString('hex')}`);
  await fsp.writeFile(f, '');
  return () => fsp.rm(f, { force: true });
}

async function volumeInUse(dir: string): Promise<boolean> {
  for (const u of await fsp.readdir(path.join(dir, 'users')).catch(() => [] as string[])) {
    const pid = Number(u.split('-')[0]);
    try {
      process.kill(pid, 0);
      return true;
    } catch {
      await fsp.rm(path.join(dir, 'users', u), { force: true }).catch(() => undefined);
    }
  }
  return false;
}
