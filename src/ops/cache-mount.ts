import { createHash, randomBytes } from 'node:crypto';
import { promises as fsp, readFileSync } from 'node:fs';
import path from 'node:path';
import type { MountDef } from '../graph/index.js';

export interface CacheMountHandle {
  dir: string;
  release(): Promise<void>;
}

/** Folder of one cache mount id under the state directory. */
export function cacheMountDir(stateDir: string, id: string): string {
  return path.join(stateDir, 'cache-mounts', createHash('sha256').update(id).digest('hex').slice(0, 32));
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Try to take the lock directory; a lock whose owner died is broken. */
async function tryLock(lockDir: string): Promise<boolean> {
  try {
    await fsp.mkdir(lockDir);
    await fsp.writeFile(path.join(lockDir, 'owner'), String(process.pid));
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    let owner = 0;
    try {
      owner = Number(readFileSync(path.join(lockDir, 'owner'), 'utf8'));
    } catch {
      // being created right now, or its creator died between mkdir and write
      const st = await fsp.stat(lockDir).catch(() => undefined);
      if (st && Date.now() - st.mtimeMs > 10_000) await fsp.rm(lockDir, { recursive: true, force: true });
      return false;
    }
    if (owner && !pidAlive(owner)) await fsp.rm(lockDir, { recursive: true, force: true });
    return false;
  }
}

/**
 * Open a cache mount for one RUN: `locked` waits for the only writer, `private` gets a fresh directory while another
 * step holds it, `shared` is used by all at once. Contents live under the state dir and never enter a layer.
 */
export async function lockCacheMount(opts: { stateDir: string; def: MountDef; signal?: AbortSignal; seed?: string }): Promise<CacheMountHandle> {
  const { def } = opts;
  const id = def.id || def.target;
  const base = cacheMountDir(opts.stateDir, id);
  const data = path.join(base, 'data');
  const lockDir = path.join(base, 'lock');
  await fsp.mkdir(base, { recursive: true });
  const created = await fsp.mkdir(data).then(() => true, (e: NodeJS.ErrnoException) => {
    if (e.code === 'EEXIST') return false;
    throw e;
  });
  if (created) {
    if (opts.seed) await fsp.cp(opts.seed, data, { recursive: true, verbatimSymlinks: true, force: true }).catch(() => undefined);
    await fsp.chmod(data, def.mode ?? 0o755);
    await fsp.chown(data, def.uid ?? 0, def.gid ?? 0);
  }
  if (opts.seed) await fsp.rm(opts.seed, { recursive: true, force: true }).catch(() => undefined);
  await writeInfo(base, id);
  const sharing = def.sharing ?? 'shared';
  if (sharing === 'locked') {
    while (!(await tryLock(lockDir))) {
      opts.signal?.throwIfAborted();
      await new Promise((r) => setTimeout(r, 50));
    }
    return { dir: data, release: () => fsp.rm(lockDir, { recursive: true, force: true }) };
  }
  if (sharing === 'private') {
    if (await tryLock(lockDir)) return { dir: data, release: () => fsp.rm(lockDir, { recursive: true, force: true }) };
    const priv = path.join(base, `private-${process.pid}-${randomBytes(6).toString('hex')}`);
    await fsp.mkdir(priv, { mode: def.mode ?? 0o755 });
    await fsp.chown(priv, def.uid ?? 0, def.gid ?? 0);
    return { dir: priv, release: () => fsp.rm(priv, { recursive: true, force: true }) };
  }
  return { dir: data, release: async () => undefined };
}

async function writeInfo(base: string, id: string): Promise<void> {
  const f = path.join(base, 'info.json');
  let info: { id: string; created: number; lastUsed: number; uses: number };
  try {
    info = JSON.parse(await fsp.readFile(f, 'utf8')) as typeof info;
  } catch {
    info = { id, created: Date.now(), lastUsed: 0, uses: 0 };
  }
  info.lastUsed = Date.now();
  info.uses++;
  const tmp = `${f}.${process.pid}.${randomBytes(4).toString('hex')}`;
  await fsp.writeFile(tmp, JSON.stringify(info));
  await fsp.rename(tmp, f);
}
