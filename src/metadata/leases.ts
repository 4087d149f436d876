/** A running build's claim on what it uses (src/gc): rows of dead pids are ignored and cleaned up. */
export interface LeaseRecord {
  id: string;
  pid: number;
  created: number;
}

/** Leases and the refs they pin (`leases`, `lease_refs` tables): what running builds use, so prune and GC leave it alone. */
export interface LeaseRepo {
  putLease(l: LeaseRecord): void;
  /** pin refs of a kind (`layer`, `blob`, ...) to a lease; pinning twice is a no-op */
  addLeaseRefs(leaseId: string, kind: string, refs: Iterable<string>): void;
  /** the lease and its refs */
  deleteLease(id: string): void;
  listLeases(): LeaseRecord[];
  listLeaseRefs(leaseIds: string[]): Array<{ leaseId: string; kind: string; ref: string }>;
}
