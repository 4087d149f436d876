import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { openMetadata, type Metadata } from './index.js';
import {
  buildRepoSuite, cacheRecordRepoSuite, imageRepoSuite, layerRepoSuite, leaseRepoSuite, statCacheRepoSuite, type RepoFactory,
} from './suites/index.js';

/** A fresh SQLite file per test; `role` picks the repository under test. */
function sqlite<R>(role: (m: Metadata) => R): RepoFactory<R> {
  return async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'kiln-meta-'));
    const m = openMetadata(path.join(dir, 'metadata.db'));
    return { repo: role(m), close: () => { m.close(); rmSync(dir, { recursive: true, force: true }); } };
  };
}

imageRepoSuite('sqlite', sqlite((m) => m.images));
layerRepoSuite('sqlite', sqlite((m) => m.layers));
cacheRecordRepoSuite('sqlite', sqlite((m) => m.cacheRecords));
buildRepoSuite('sqlite', sqlite((m) => m.builds));
statCacheRepoSuite('sqlite', sqlite((m) => m.statCache));
leaseRepoSuite('sqlite', sqlite((m) => m.leases));

test('sqlite: one transaction spans the roles and rolls back together; records survive a reopen', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'kiln-meta-'));
  const file = path.join(dir, 'metadata.db');
  try {
    let m = openMetadata(file);
    const layer = { diffId: 'sha256:d', blob: 'sha256:b', blobSize: 1, mediaType: 'x', contentId: 'c', snapshotId: null } as const;
    assert.throws(() => m.transaction(() => {
      m.layers.putLayer(layer);
      m.cacheRecords.putCache({ key: 'k', outputId: 'o', diffId: 'sha256:d', name: 'RUN', inputs: {} });
      throw new Error('stop');
    }), /stop/);
    assert.equal(m.layers.getLayer('sha256:d'), undefined, 'the layer write rolled back');
    assert.equal(m.cacheRecords.getCache('k'), undefined, 'the cache write rolled back');
    m.transaction(() => {
      m.layers.putLayer(layer);
      m.transaction(() => m.cacheRecords.putCache({ key: 'k', outputId: 'o', diffId: 'sha256:d', name: 'RUN', inputs: {} }));
    });
    m.close();
    m = openMetadata(file);
    assert.equal(m.layers.getLayer('sha256:d')?.blob, 'sha256:b');
    assert.equal(m.cacheRecords.countCacheByDiffId('sha256:d'), 1);
    m.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
