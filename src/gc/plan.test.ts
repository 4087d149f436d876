import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { CacheRecord } from '../metadata/index.js';
import type { Inventory, LayerInfo } from './inventory.js';
import { planPrune } from './plan.js';
import { usageReport } from './usage.js';

const NOW = 1_000_000;

function layer(id: string, o: Partial<LayerInfo> = {}): LayerInfo {
  return { diffId: `sha256:${id}`, blob: `sha256:b${id}`, blobBytes: 100, blobExists: true, snapshotId: null, snapshotBytes: 0, created: 10, lastUsed: 10, ...o };
}
function record(key: string, diffId: string | null, lastUsed: number): CacheRecord {
  return { key, outputId: `o${key}`, diffId: diffId as CacheRecord['diffId'], name: `step ${key}`, inputs: {}, created: lastUsed, lastUsed, useCount: 1 };
}

/** Three records: r1 (old) and r2 share layer A; r3 (newest) has layer B; layer C belongs to a tagged image. */
function inventory(over: Partial<Inventory> = {}): Inventory {
  const layers = new Map<string, LayerInfo>([
    ['sha256:A', layer('A', { snapshotId: 1, snapshotBytes: 50, lastUsed: 30 })],
    ['sha256:B', layer('B', { snapshotId: 2, snapshotBytes: 50, lastUsed: 40 })],
    ['sha256:C', layer('C', { snapshotId: 3, snapshotBytes: 1000, lastUsed: 5 })],
  ]);
  return {
    now: NOW,
    root: '/x',
    records: [record('r1', 'sha256:A', 20), record('r2', 'sha256:A', 30), record('r3', 'sha256:B', 40), record('r4', 'sha256:C', 1)],
    layers,
    snapshots: new Map([
      [1, { id: 1, diffId: 'sha256:A', state: 'committed', created: 10, bytes: 50, layer: 'sha256:A' }],
      [2, { id: 2, diffId: 'sha256:B', state: 'committed', created: 10, bytes: 50, layer: 'sha256:B' }],
      [3, { id: 3, diffId: 'sha256:C', state: 'committed', created: 10, bytes: 1000, layer: 'sha256:C' }],
    ]),
    blobs: new Map([
      ['sha256:bA', { digest: 'sha256:bA', bytes: 100, mtimeMs: 10 }],
      ['sha256:bB', { digest: 'sha256:bB', bytes: 100, mtimeMs: 10 }],
      ['sha256:bC', { digest: 'sha256:bC', bytes: 100, mtimeMs: 10 }],
      ['sha256:manifest', { digest: 'sha256:manifest', bytes: 10, mtimeMs: 10 }],
      ['sha256:stale', { digest: 'sha256:stale', bytes: 7, mtimeMs: 10 }],
    ]),
    images: [{ name: 'img:1', manifest: 'sha256:manifest', blobs: ['sha256:manifest', 'sha256:bC'], diffIds: ['sha256:C'] }],
    imageBlobs: new Map([['sha256:manifest', ['img:1']], ['sha256:bC', ['img:1']]]),
    imageDiffIds: new Map([['sha256:C', ['img:1']]]),
    cacheMounts: [{ id: 'npm', key: 'npm', dir: '/x/cache-mounts/h/data', size: 500, created: 1, lastUsed: 2, uses: 3, builds: [], inUse: false }],
    protection: { threshold: Number.POSITIVE_INFINITY, diffIds: new Set(), blobs: new Set(), otherBuildRunning: false },
    totalBytes: 2000,
    metadataBytes: 0,
    historyBytes: 0,
    disk: { total: 1e9, free: 5e8 },
    ...over,
  };
}

const kinds = (p: ReturnType<typeof planPrune>): string[] => p.actions.map((a) => `${a.kind}:${'key' in a ? a.key : 'diffId' in a ? a.diffId : 'digest' in a ? a.digest : a.id}`);

test('default prune: dangling blob first, records and their exclusive layers; image-shared and mounts kept', () => {
  const p = planPrune(inventory());
  assert.deepEqual(kinds(p), ['blob:sha256:stale', 'record:r1', 'record:r2', 'layer:sha256:A', 'record:r3', 'layer:sha256:B']);
  assert.equal(p.bytes, 7 + 150 + 150);
});

test('--all also removes image-shared records, image snapshots (never their blobs) and cache mounts', () => {
  const p = planPrune(inventory(), { all: true });
  assert.ok(kinds(p).includes('record:r4'));
  assert.ok(kinds(p).includes('snapshot:3'));
  assert.ok(kinds(p).includes('cache-mount:npm'));
  assert.ok(!p.actions.some((a) => a.kind === 'blob' && (a.digest === 'sha256:bC' || a.digest === 'sha256:manifest')));
  assert.ok(!p.actions.some((a) => a.kind === 'layer' && a.diffId === 'sha256:C'));
});

test('a budget removes least recently used first and stops when met', () => {
  // the image's unpacked snapshot was used last, so records go first: the stale blob (7) and both A records
  // (150 when the second goes) bring 2000 under 1850
  const recent = inventory();
  recent.layers.get('sha256:C')!.lastUsed = 50;
  const p = planPrune(recent, { limits: { maxUsedSpace: 1850 } });
  assert.deepEqual(kinds(p), ['blob:sha256:stale', 'record:r1', 'record:r2', 'layer:sha256:A']);
  assert.equal(p.usedAfter, 2000 - 157);
  assert.equal(p.limitsUnmet, false);
  const floor = planPrune(recent, { limits: { minFreeSpace: 1e12, reservedSpace: 1990 } });
  assert.deepEqual(kinds(floor), ['blob:sha256:stale', 'record:r1', 'record:r2', 'layer:sha256:A'], 'reserved space is a floor');
  const lru = planPrune(inventory(), { limits: { maxUsedSpace: 1500 } });
  assert.equal(kinds(lru)[1], 'snapshot:3', 'an unpacked image layer used long ago goes before newer records');
  const unmet = planPrune(inventory(), { limits: { maxUsedSpace: 10 } });
  assert.equal(unmet.limitsUnmet, true);
});

test('live leases: refs and anything used since the oldest live build started are kept', () => {
  const inv = inventory({ protection: { threshold: 35, diffIds: new Set(['sha256:A']), blobs: new Set(), otherBuildRunning: true } });
  const p = planPrune(inv, { all: true });
  assert.ok(!p.actions.some((a) => a.kind === 'layer' && a.diffId === 'sha256:A'), 'leased layer kept');
  assert.ok(!kinds(p).includes('record:r3'), 'record used after the lease began kept');
  assert.ok(!kinds(p).includes('cache-mount:npm'), 'cache mounts are left alone while another build runs');
  assert.ok(kinds(p).includes('record:r1'), 'old records still go');
});

test('filters: type, id prefix and until', () => {
  assert.deepEqual(kinds(planPrune(inventory(), { filters: { types: ['cache-mount'] } })), ['cache-mount:npm']);
  assert.deepEqual(kinds(planPrune(inventory(), { filters: { ids: ['r3'] } })), ['record:r3', 'layer:sha256:B']);
  assert.deepEqual(kinds(planPrune(inventory(), { filters: { types: ['cache'], untilMs: NOW - 25 } })), ['record:r1']);
});

test('du report: totals count shared layers once; reclaimable equals what prune --all frees', () => {
  const inv = inventory();
  const r = usageReport(inv);
  assert.equal(r.total, 2000);
  assert.equal(r.reclaimable, planPrune(inv, { all: true }).bytes);
  const a = r.rows.filter((x) => x.type === 'cache' && x.id !== 'r4');
  assert.deepEqual(a.map((x) => [x.id, x.size, x.shared]), [['r1', 150, true], ['r2', 150, true], ['r3', 150, false]]);
  assert.equal(r.rows.find((x) => x.id === 'r4')?.shared, true, 'a layer of a tagged image is shared');
  assert.equal(r.shared + r.private + r.metadata, r.total);
  assert.equal(r.rows.filter((x) => x.type === 'cache-mount').length, 1);
  assert.deepEqual(usageReport(inv, { types: ['image'] }).rows.map((x) => x.owner), ['img:1']);
});
