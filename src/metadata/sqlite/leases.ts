import type { LeaseRecord, LeaseRepo } from '../leases.js';
import type { SqliteConnection } from './connection.js';

/** The LeaseRepo role over the shared SQLite connection. */
export class SqliteLeases implements LeaseRepo {
  constructor(private readonly c: SqliteConnection) {}

  putLease(l: LeaseRecord): void {
    this.c.stmt('INSERT OR REPLACE INTO leases (id, pid, created) VALUES (?, ?, ?)').run(l.id, l.pid, l.created);
  }
  addLeaseRefs(leaseId: string, kind: string, refs: Iterable<string>): void {
    const ins = this.c.stmt('INSERT OR IGNORE INTO lease_refs (lease_id, kind, ref) VALUES (?, ?, ?)');
    for (const r of refs) ins.run(leaseId, kind, r);
  }
  deleteLease(id: string): void {
    this.c.stmt('DELETE FROM lease_refs WHERE lease_id = ?').run(id);
    this.c.stmt('DELETE FROM leases WHERE id = ?').run(id);
  }
  listLeases(): LeaseRecord[] {
    return this.c.stmt('SELECT id, pid, created FROM leases').all() as LeaseRecord[];
  }
  listLeaseRefs(leaseIds: string[]): Array<{ leaseId: string; kind: string; ref: string }> {
    if (leaseIds.length === 0) return [];
    return this.c.stmt(`SELECT lease_id AS leaseId, kind, ref FROM lease_refs WHERE lease_id IN (${leaseIds.map(() => '?').join(',')})`)
      .all(...leaseIds) as Array<{ leaseId: string; kind: string; ref: string }>;
  }
}
