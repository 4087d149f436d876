import { existsSync, promises as fsp } from 'node:fs';
import path from 'node:path';
import type { ExecLimits } from '../types.js';

const CGROUP_ROOT = '/sys/fs/cgroup';
const V1_MEMORY = path.join(CGROUP_ROOT, 'memory');
/** usage this close to the limit counts as "at the limit" (the kernel charges in pages and batches) */
const OOM_MARGIN = 1 << 20;

/**
 * A memory limit kiln can tell apart from another failure: on cgroup v1 the limit is set on a parent cgroup
 * `kiln/<id>` that kiln creates (runc puts the container in `kiln/<id>/run` and removes only that one when the run
 * ends), so after the run the parent still says how high its usage went. A run that ended by SIGKILL (137) with its
 * usage at the limit was killed by the kernel's OOM killer (the v1 `oom_kill` counter is kept in the victim's own
 * cgroup, which runc has removed by then). On cgroup v2 the container's own `memory.max` is used and any SIGKILL
 * the run did not get from kiln is reported as the memory limit.
 */
export interface MemoryGuard {
  /** cgroupsPath for the container */
  cgroupsPath: string;
  /** spec resources runc should apply itself */
  resources: { memory?: { limit: number; swap: number }; pids?: { limit: number }; cpu?: { shares: number } };
  /** true when the kernel killed a process of the run for the memory limit */
  oomKilled(exitCode: number): Promise<boolean>;
  release(): Promise<void>;
}

/** Prepare the cgroups of one run. */
export async function prepareCgroups(opts: { id: string; limits?: ExecLimits }): Promise<MemoryGuard> {
  const l = opts.limits ?? {};
  const resources: MemoryGuard['resources'] = {
    ...(l.pids ? { pids: { limit: l.pids } } : {}),
    ...(l.cpuShares ? { cpu: { shares: l.cpuShares } } : {}),
  };
  const none: MemoryGuard = { cgroupsPath: `/kiln/${opts.id}`, resources, oomKilled: async () => false, release: async () => undefined };
  if (!l.memoryBytes) return none;
  const limit = l.memoryBytes;
  if (!existsSync(path.join(V1_MEMORY, 'memory.limit_in_bytes'))) {
    return { ...none, resources: { ...resources, memory: { limit, swap: limit } }, oomKilled: async (code) => code === 137 };
  }
  const parent = path.join(V1_MEMORY, 'kiln', opts.id);
  await fsp.mkdir(parent, { recursive: true });
  await fsp.writeFile(path.join(parent, 'memory.limit_in_bytes'), String(limit));
  // without swap accounting the memory limit alone applies (and this machine may have no swap at all)
  await fsp.writeFile(path.join(parent, 'memory.memsw.limit_in_bytes'), String(limit)).catch(() => undefined);
  return {
    cgroupsPath: `/kiln/${opts.id}/run`,
    resources,
    oomKilled: async (code) => {
      if (code !== 137) return false;
      const max = await fsp.readFile(path.join(parent, 'memory.max_usage_in_bytes'), 'utf8').catch(() => '0');
      return Number(max.trim()) >= limit - OOM_MARGIN;
    },
    release: () => removeRunCgroups(opts.id),
  };
}

/** Remove `kiln/<id>` (and a leftover `run` below it) from every v1 hierarchy; missing ones are fine. */
export async function removeRunCgroups(id: string): Promise<void> {
  for (const h of await fsp.readdir(CGROUP_ROOT).catch(() => [] as string[])) {
    const dir = path.join(CGROUP_ROOT, h, 'kiln', id);
    await fsp.rmdir(path.join(dir, 'run')).catch(() => undefined);
    await fsp.rmdir(dir).catch(() => undefined);
  }
}

/** Names of `kiln/<id>` cgroups in any v1 hierarchy (left by a crashed kiln or runc: cleaned at the next start). */
export async function listRunCgroups(): Promise<string[]> {
  const names = new Set<string>();
  for (const h of await fsp.readdir(CGROUP_ROOT).catch(() => [] as string[])) {
    const entries = await fsp.readdir(path.join(CGROUP_ROOT, h, 'kiln'), { withFileTypes: true }).catch(() => []);
    for (const e of entries) if (e.isDirectory()) names.add(e.name);
  }
  return [...names];
}

/**
 * Bytes under `dir` (its regular files' allocated sizes, directories and links counted by size), walked with lstat
 * only: nothing the run links to is followed.
 */
export async function treeBytes(dir: string, signal?: AbortSignal): Promise<number> {
  let total = 0;
  const stack = [dir];
  while (stack.length > 0) {
    if (signal?.aborted) break;
    const d = stack.pop()!;
    const entries = await fsp.readdir(d, { withFileTypes: true }).catch(() => []);
    for (const e of entries) {
      const p = path.join(d, e.name);
      const st = await fsp.lstat(p).catch(() => undefined);
      if (!st) continue;
      total += st.isFile() ? Math.max(st.blocks * 512, 0) : st.size;
      if (st.isDirectory()) stack.push(p);
    }
  }
  return total;
}
