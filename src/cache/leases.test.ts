import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { openMetadata } from '../metadata/index.js';
import { acquireLease, readProtection, removeDeadLeases } from './leases.js';

test('leases protect refs and recent use while the owner lives; dead owners are ignored and removed', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'kiln-lease-'));
  const db = openMetadata(path.join(dir, 'metadata.db'));
  try {
    assert.equal(readProtection(db.leases).threshold, Number.POSITIVE_INFINITY);
    const lease = acquireLease(db.leases);
    lease.addLayers(['sha256:a', 'sha256:a']);
    lease.addBlobs(['sha256:m']);
    let p = readProtection(db.leases);
    assert.equal(p.threshold, lease.created);
    assert.deepEqual([...p.diffIds], ['sha256:a']);
    assert.deepEqual([...p.blobs], ['sha256:m']);
    assert.equal(p.otherBuildRunning, true);
    assert.equal(readProtection(db.leases, { selfLeaseId: lease.id }).otherBuildRunning, false);
    db.leases.putLease({ id: 'dead', pid: 2 ** 22 + 12345, created: 1 });
    db.leases.addLeaseRefs('dead', 'layer', ['sha256:dead']);
    p = readProtection(db.leases);
    assert.equal(p.threshold, lease.created, 'a dead lease does not protect');
    assert.equal(p.diffIds.has('sha256:dead'), false);
    assert.equal(removeDeadLeases(db.leases), 1);
    lease.release();
    lease.release();
    assert.equal(readProtection(db.leases).threshold, Number.POSITIVE_INFINITY);
    assert.equal(db.leases.listLeases().length, 0);
  } finally {
    db.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a refs-only lease (a running container) protects its refs only: no threshold, not another running build', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'kiln-lease-'));
  const db = openMetadata(path.join(dir, 'metadata.db'));
  try {
    const held = acquireLease(db.leases, { refsOnly: true });
    held.addLayers(['sha256:img']);
    held.addBlobs(['sha256:manifest']);
    let p = readProtection(db.leases);
    assert.equal(p.threshold, Number.POSITIVE_INFINITY);
    assert.equal(p.otherBuildRunning, false);
    assert.deepEqual([...p.diffIds], ['sha256:img']);
    assert.deepEqual([...p.blobs], ['sha256:manifest']);
    const build = acquireLease(db.leases);
    p = readProtection(db.leases, { selfLeaseId: build.id });
    assert.equal(p.threshold, build.created, 'only the build sets the threshold');
    assert.equal(p.otherBuildRunning, false, 'the container is not another build');
    build.release();
    // a crashed holder's refs-only lease is removed like any dead process's
    db.leases.putLease({ id: 'refs-dead', pid: 2 ** 22 + 12345, created: 1 });
    assert.equal(removeDeadLeases(db.leases), 1);
    held.release();
    assert.equal(db.leases.listLeases().length, 0);
  } finally {
    db.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
