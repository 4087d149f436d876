import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { LayerRepo } from '../layers.js';
import { withRepo, type RepoFactory } from './factory.js';

const layer = (n: string, snapshotId: number | null = null) =>
  ({ diffId: `sha256:d${n}`, blob: `sha256:b${n}`, blobSize: 10, mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', contentId: `c${n}`, snapshotId }) as const;

/** The contract of the layers role: layer records and the snapshots they are unpacked in. */
export function layerRepoSuite(impl: string, factory: RepoFactory<LayerRepo>): void {
  test(`${impl} layers: put, find by diffID and by blob, keep a recorded snapshot, set, touch, delete`, () =>
    withRepo(factory, async (layers) => {
      assert.equal(layers.getLayer('sha256:d1'), undefined);
      layers.putLayer(layer('1', 7));
      const rec = layers.getLayer('sha256:d1');
      assert.ok(rec);
      assert.equal(rec.blob, 'sha256:b1');
      assert.equal(rec.contentId, 'c1');
      assert.equal(rec.snapshotId, 7);
      assert.equal(rec.created, rec.lastUsed);
      assert.equal(layers.getLayerByBlob('sha256:b1')?.diffId, 'sha256:d1');
      layers.putLayer({ ...layer('1'), blobSize: 20 });
      assert.equal(layers.getLayer('sha256:d1')?.snapshotId, 7, 'a put without a snapshot keeps the recorded one');
      assert.equal(layers.getLayer('sha256:d1')?.blobSize, 20);
      layers.setLayerSnapshot('sha256:d1', null);
      assert.equal(layers.getLayer('sha256:d1')?.snapshotId, null);
      await new Promise((r) => setTimeout(r, 5));
      layers.touchLayer('sha256:d1');
      const touched = layers.getLayer('sha256:d1');
      assert.ok(touched && touched.lastUsed > touched.created);
      layers.putLayer(layer('2'));
      assert.deepEqual(layers.listLayers().map((l) => l.diffId).sort(), ['sha256:d1', 'sha256:d2']);
      layers.deleteLayer('sha256:d1');
      assert.equal(layers.getLayer('sha256:d1'), undefined);
      assert.deepEqual(layers.listLayers().map((l) => l.diffId), ['sha256:d2']);
    }));

  test(`${impl} layers: snapshot rows go from preparing to committed; sizes are kept per snapshot`, () =>
    withRepo(factory, (layers) => {
      const a = layers.createSnapshot(null);
      const b = layers.createSnapshot('sha256:d2');
      assert.notEqual(a, b);
      assert.deepEqual(layers.getSnapshot(a), { id: a, diffId: null, state: `preparing:${process.pid}` });
      layers.commitSnapshot(a, 'sha256:d1');
      assert.deepEqual(layers.getSnapshot(a), { id: a, diffId: 'sha256:d1', state: 'committed' });
      assert.deepEqual(layers.listSnapshots().map((s) => s.id).sort(), [a, b].sort());
      const rows = layers.listSnapshotRows();
      assert.equal(rows.length, 2);
      assert.ok(rows.every((r) => typeof r.created === 'number' && r.created > 0));
      assert.equal(layers.snapshotSizes().size, 0);
      layers.putSnapshotSize(a, 100);
      layers.putSnapshotSize(a, 150);
      assert.deepEqual([...layers.snapshotSizes()], [[a, 150]]);
      layers.deleteSnapshotSize(a);
      layers.deleteSnapshot(b);
      assert.equal(layers.getSnapshot(b), undefined);
      assert.equal(layers.snapshotSizes().size, 0);
      assert.deepEqual(layers.listSnapshots().map((s) => s.id), [a]);
    }));
}
