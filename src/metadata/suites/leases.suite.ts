import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { LeaseRepo } from '../leases.js';
import { withRepo, type RepoFactory } from './factory.js';

/** The contract of the leases role. */
export function leaseRepoSuite(impl: string, factory: RepoFactory<LeaseRepo>): void {
  test(`${impl} leases: a lease pins refs by kind; deleting it drops its refs`, () =>
    withRepo(factory, (leases) => {
      assert.deepEqual(leases.listLeaseRefs([]), []);
      leases.putLease({ id: 'l1', pid: 10, created: 1 });
      leases.putLease({ id: 'l2', pid: 11, created: 2 });
      leases.addLeaseRefs('l1', 'layer', ['sha256:a', 'sha256:a', 'sha256:b']);
      leases.addLeaseRefs('l1', 'blob', new Set(['sha256:m']));
      leases.addLeaseRefs('l2', 'layer', ['sha256:c']);
      assert.deepEqual(leases.listLeases().map((l) => l.id).sort(), ['l1', 'l2']);
      const refs = (ids: string[]) => leases.listLeaseRefs(ids).map((r) => `${r.leaseId} ${r.kind} ${r.ref}`).sort();
      assert.deepEqual(refs(['l1']), ['l1 blob sha256:m', 'l1 layer sha256:a', 'l1 layer sha256:b']);
      assert.deepEqual(refs(['l1', 'l2']).length, 4);
      leases.deleteLease('l1');
      assert.deepEqual(leases.listLeases(), [{ id: 'l2', pid: 11, created: 2 }]);
      assert.deepEqual(refs(['l1']), []);
      assert.deepEqual(refs(['l2']), ['l2 layer sha256:c']);
    }));
}
