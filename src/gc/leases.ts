import { randomBytes } from 'node:crypto';
import type { LeaseRepo } from '../metadata/index.js';
import { pidAlive } from '../proc/index.js';

/**
 * A running build's lease. Everything created or used since `created` is protected from prune and GC while the owning
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
 * const lease = acquireLease(state.db.leases);
 * try { ... lease.addLayers(diffIds) ... } finally { lease.release(); }
 */
export function acquireLease(leases: LeaseRepo): BuildLease {
  const id = `${Date.now().toString(36)}-${process.pid}-${randomBytes(4).toString('hex')}`;
  const created = Date.now();
  leases.putLease({ id, pid: process.pid, created });
  let released = false;
  return {
    id,
    created,
    addLayers(diffIds) {
      if (!released) leases.addLeaseRefs(id, 'layer', diffIds);
    },
    addBlobs(digests) {
      if (!released) leases.addLeaseRefs(id, 'blob', digests);
    },
    release() {
      if (released) return;
      released = true;
      leases.deleteLease(id);
    },
  };
}

/** The protection live leases give; `selfLeaseId` counts for protection but not as another running build. */
export function readProtection(leases: LeaseRepo, opts: { selfLeaseId?: string } = {}): Protection {
  const live = leases.listLeases().filter((l) => pidAlive(l.pid));
  const refs = leases.listLeaseRefs(live.map((l) => l.id));
  return {
    threshold: live.length ? Math.min(...live.map((l) => l.created)) : Number.POSITIVE_INFINITY,
    diffIds: new Set(refs.filter((r) => r.kind === 'layer').map((r) => r.ref)),
    blobs: new Set(refs.filter((r) => r.kind === 'blob').map((r) => r.ref)),
    otherBuildRunning: live.some((l) => l.id !== opts.selfLeaseId),
  };
}

/** Remove the leases of processes that are gone; returns how many. */
export function removeDeadLeases(leases: LeaseRepo): number {
  let n = 0;
  for (const l of leases.listLeases()) {
    if (pidAlive(l.pid)) continue;
    leases.deleteLease(l.id);
    n++;
  }
  return n;
}
