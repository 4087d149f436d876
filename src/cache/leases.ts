import { randomBytes } from 'node:crypto';
import type { LeaseRecords } from './types.js';
import { pidAlive } from '../proc/index.js';

/**
 * A running build's lease (the cache part's only lease mechanism: one row in `leases` plus the refs it names). Everything created or used since `created` is protected from prune and GC (src/gc) while the owning
 * process lives, and so is everything named by the lease's refs (layers by diffId, blobs by digest) — the older data a
 * build reuses. Rows of dead processes are ignored (and removed by prune).
 */
export interface BuildLease {
  readonly id: string;
  readonly created: number;
  /** Protect layers (their record, unpacked snapshot and blob). */
  addLayers(diffIds: Iterable<string>): void;
  /** Protect blobs (manifests, configs, layer blobs). */
  addBlobs(digests: Iterable<string>): void;
  /** Drop the lease; safe to call twice. */
  release(): void;
}

/** What live leases protect right now. */
export interface Protection {
  /** creation time of the oldest live lease; anything created or used at or after it is protected (Infinity: none) */
  threshold: number;
  diffIds: Set<string>;
  blobs: Set<string>;
  /** a live lease other than the caller's own exists (cache mounts are then left alone) */
  otherBuildRunning: boolean;
}

/**
 * Take a lease for a build (one row in `leases`). Take it before the first cache lookup; release it when the build
 * (and its post-build GC) ends.
 *
 * @example
 * const lease = acquireLease(db);
 * try { ... lease.addLayers(diffIds) ... } finally { lease.release(); }
 */
export function acquireLease(db: LeaseRecords, opts: { refsOnly?: boolean } = {}): BuildLease {
  const id = `${opts.refsOnly ? REFS_ONLY : ''}${Date.now().toString(36)}-${process.pid}-${randomBytes(4).toString('hex')}`;
  const created = Date.now();
  db.putLease({ id, pid: process.pid, created });
  let released = false;
  return {
    id,
    created,
    addLayers(diffIds) {
      if (!released) db.addLeaseRefs(id, 'layer', diffIds);
    },
    addBlobs(digests) {
      if (!released) db.addLeaseRefs(id, 'blob', digests);
    },
    release() {
      if (released) return;
      released = true;
      db.deleteLease(id);
    },
  };
}

/**
 * The id prefix of a refs-only lease (`acquireLease(db, { refsOnly: true })`, held by a running container): it
 * protects only the refs it names, sets no time threshold and is not "another build running".
 */
const REFS_ONLY = 'refs-';

/** The protection live leases give; `selfLeaseId` counts for protection but not as another running build. */
export function readProtection(db: LeaseRecords, opts: { selfLeaseId?: string } = {}): Protection {
  const live = db.listLeases().filter((l) => pidAlive(l.pid));
  const refs = db.listLeaseRefs(live.map((l) => l.id));
  const builds = live.filter((l) => !l.id.startsWith(REFS_ONLY));
  return {
    threshold: builds.length ? Math.min(...builds.map((l) => l.created)) : Number.POSITIVE_INFINITY,
    diffIds: new Set(refs.filter((r) => r.kind === 'layer').map((r) => r.ref)),
    blobs: new Set(refs.filter((r) => r.kind === 'blob').map((r) => r.ref)),
    otherBuildRunning: builds.some((l) => l.id !== opts.selfLeaseId),
  };
}

/** Remove the leases of processes that are gone; returns how many. */
export function removeDeadLeases(db: LeaseRecords): number {
  let n = 0;
  for (const l of db.listLeases()) {
    if (pidAlive(l.pid)) continue;
    db.deleteLease(l.id);
    n++;
  }
  return n;
}
