import { spawn } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { BuildError } from '../errors/index.js';
import type { Digest } from '../oci/index.js';
import { acquireLease, createLayerCache, layerRecordsOf, type BuildLease, type LayerCache } from '../cache/index.js';
import type { Blobs, State } from './state.js';

/**
 * Mount an image's filesystem (an overlay over its layers' snapshots, with a throwaway upper dir), run `fn` on the
 * mountpoint, then release it: what a start check and a `type=local` / `type=tar` output read.
 */
export async function withImageRootfs<T>(s: State, diffIds: Digest[], fn: (mountpoint: string) => Promise<T>): Promise<T> {
  const snap = await layerCache(s).mount(diffIds);
  try {
    return await fn(snap.mountpoint);
  } finally {
    await snap.release();
  }
}

function tar(args: string[], opts: { stdin?: 'pipe' } = {}): Promise<void> {
  return new Promise((resolve, reject) => {
    const p = spawn('tar', args, { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    p.stderr.on('data', (c: Buffer) => (err += c.toString()));
    p.on('error', reject);
    p.on('close', (code) => (code === 0 ? resolve() : reject(new BuildError('ERR_KILN_ARCHIVE_WRITE', `tar ${args[0]} failed: ${err.trim().split('\n').pop() ?? `exit ${code}`}`))));
    void opts;
  });
}

/**
 * `--output type=local,dest=DIR` (the final filesystem written into DIR, owners, modes, links and xattrs kept) or
 * `type=tar,dest=FILE` (the same as one tar), as BuildKit's local and tar exporters.
 */
export async function exportRootfs(s: State, diffIds: Digest[], out: { type: 'local' | 'tar'; dest: string }): Promise<void> {
  await withImageRootfs(s, diffIds, async (mnt) => {
    const common = ['--numeric-owner', '--xattrs', '--xattrs-include=*', '--acls'];
    if (out.type === 'tar') {
      await tar(['-cf', out.dest, ...common, '-C', mnt, '.']);
      return;
    }
    mkdirSync(out.dest, { recursive: true });
    const tmp = `${out.dest}.kiln-${process.pid}.tar`;
    try {
      await tar(['-cf', tmp, ...common, '-C', mnt, '.']);
      await tar(['-xpf', tmp, ...common, '--same-owner', '-C', out.dest]);
    } finally {
      await import('node:fs/promises').then((f) => f.rm(tmp, { force: true }));
    }
  });
}

/** The state's layer cache (src/cache); with the build's lease, what it hands out and writes is kept from GC. */
export function layerCache(s: State, lease?: BuildLease): LayerCache {
  const records = layerRecordsOf(s.db);
  return createLayerCache({ records, store: s.store, snapshots: s.snapshots, ...(lease ? { lease } : {}) });
}

/**
 * The committed snapshots (their ids) of an image's layers, unpacked now where they are not yet: the lowers a
 * container of the image mounts.
 */
export async function imageSnapshots(s: State, diffIds: Digest[]): Promise<number[]> {
  return (await layerCache(s).acquireAll(diffIds)).map((r) => r.snapshotId);
}

/**
 * Keep an image's layers (records, unpacked snapshots) and blobs from prune and GC while it is in use (a running
 * container): a refs-only lease of this process, which sets no GC threshold and does not count as a running build.
 * A crashed holder's lease is removed like any dead process's.
 */
export async function holdImage(s: State, manifest: Digest, diffIds: Digest[]): Promise<{ release(): void }> {
  const lease = acquireLease(s.db.leases, { refsOnly: true });
  lease.addLayers(diffIds);
  lease.addBlobs(await imageBlobs(s, manifest));
  return { release: () => lease.release() };
}

/** The manifest, config and layer digests of an image (an index: of each of its manifests) that the store holds. */
export async function imageBlobs(s: Blobs, manifest: Digest): Promise<Digest[]> {
  if (!(await s.store.has(manifest))) return [];
  const m = JSON.parse((await s.store.read(manifest)).toString()) as { config?: { digest: Digest }; layers?: Array<{ digest: Digest }>; manifests?: Array<{ digest: Digest }> };
  const out: Digest[] = [manifest];
  if (m.config) out.push(m.config.digest);
  for (const l of m.layers ?? []) if (await s.store.has(l.digest)) out.push(l.digest);
  for (const sub of m.manifests ?? []) out.push(...(await imageBlobs(s, sub.digest)));
  return out;
}
