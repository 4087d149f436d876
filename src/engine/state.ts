import { mkdirSync, promises as fsp } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { cleanIngest, createLocalStore, type ContentStore } from '../store/index.js';
import { openMetadataDb, type MetadataDb } from '../metadata/index.js';
import { createOverlaySnapshotter, type Snapshotter } from '../snapshot/index.js';
import { createRuncExecutor, type Executor } from '../executor/index.js';

/** Everything kiln keeps, under one state directory. */
export interface State {
  root: string;
  store: ContentStore;
  db: MetadataDb;
  snapshots: Snapshotter;
  executor: Executor;
  close(): void;
}

/** `--root`, then `KILN_ROOT`, then /var/lib/kiln for root, else `$XDG_DATA_HOME/kiln`. */
export function defaultRoot(): string {
  if (process.env.KILN_ROOT) return process.env.KILN_ROOT;
  if (process.getuid?.() === 0) return '/var/lib/kiln';
  const xdg = process.env.XDG_DATA_HOME || path.join(os.homedir(), '.local', 'share');
  return path.join(xdg, 'kiln');
}

/**
 * Open (creating if needed) the state directory. Leftovers of a killed build — temp blobs, uncommitted snapshots,
 * stale containers and mounts — are removed; nothing half-written is ever trusted because records are written only
 * after the data they point to is committed.
 */
export async function openState(opts: { root?: string; cleanup?: boolean } = {}): Promise<State> {
  const root = path.resolve(opts.root ?? defaultRoot());
  mkdirSync(root, { recursive: true, mode: 0o711 });
  await fsp.mkdir(path.join(root, 'tmp'), { recursive: true });
  const store = await createLocalStore({ root: path.join(root, 'content') });
  const db = openMetadataDb(path.join(root, 'metadata.db'));
  const snapshots = await createOverlaySnapshotter({ root: path.join(root, 'snapshots'), index: db });
  const executor = createRuncExecutor({ stateDir: path.join(root, 'exec') });
  if (opts.cleanup !== false) {
    await cleanIngest(store.root);
    await executor.cleanup().catch(() => undefined);
    await snapshots.cleanup();
    await cleanTmp(path.join(root, 'tmp'));
  }
  return { root, store, db, snapshots, executor, close: () => db.close() };
}

async function cleanTmp(dir: string): Promise<void> {
  for (const name of await fsp.readdir(dir).catch(() => [] as string[])) {
    const p = path.join(dir, name);
    const st = await fsp.stat(p).catch(() => undefined);
    // other builds may be using fresh entries; anything older than a day is a leftover
    if (st && Date.now() - st.mtimeMs > 24 * 3600_000) await fsp.rm(p, { recursive: true, force: true });
  }
}
