import { promises as fsp } from 'node:fs';
import path from 'node:path';
import type { Metadata } from '../metadata/index.js';

/** Folder of build logs: `<root>/history/<build id>.log`. */
export function historyDir(root: string): string {
  return path.join(root, 'history');
}

/**
 * Keep the newest `maxBuilds` finished builds (running ones are never dropped) and delete the rest with their logs;
 * log files of builds no longer recorded go too. Returns the ids removed.
 */
export async function trimHistory(opts: { root: string; db: Pick<Metadata, 'builds' | 'transaction'>; maxBuilds: number }): Promise<string[]> {
  const builds = opts.db.builds.listBuildStatuses(); // newest first
  const finished = builds.filter((b) => b.status !== 'running');
  const drop = finished.slice(opts.maxBuilds).map((b) => b.id);
  if (drop.length) opts.db.transaction(() => drop.forEach((id) => opts.db.builds.deleteBuild(id)));
  const keep = new Set(builds.map((b) => b.id).filter((id) => !drop.includes(id)));
  const dir = historyDir(opts.root);
  for (const name of await fsp.readdir(dir).catch(() => [] as string[])) {
    const id = name.replace(/\.log$/, '');
    if (!keep.has(id)) await fsp.rm(path.join(dir, name), { force: true });
  }
  return drop;
}
