// The cache part over a real state: SQLite records, the content store, overlay snapshots (mounting needs root, as
// the integration tests; see requireIntegration).
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { gunzipSync } from 'node:zlib';
import { openMetadata, type Metadata } from '../metadata/index.js';
import { createLocalStore } from '../store/index.js';
import { createOverlaySnapshotter } from '../snapshot/index.js';
import { writeLayer } from '../layer/index.js';
import { prune, treeBytes } from '../gc/index.js';
import { requireIntegration } from '../../test/helpers/kiln.js';
import { acquireLease, createLayerCache, layerRecordsOf, type LayerCacheDeps } from './index.js';

interface Fixture extends LayerCacheDeps {
  root: string;
  db: Metadata;
  /** a directory with a few files, and a layer written from it (recorded, not unpacked) */
  diffId: `sha256:${string}`;
}

async function fixture(t: TestContext): Promise<Fixture> {
  const root = mkdtempSync(path.join(tmpdir(), 'kiln-cache-'));
  const db = openMetadata(path.join(root, 'metadata.db'));
  t.after(() => {
    db.close();
    rmSync(root, { recursive: true, force: true });
  });
  mkdirSync(path.join(root, 'tmp'));
  const store = await createLocalStore({ root: path.join(root, 'content') });
  const snapshots = await createOverlaySnapshotter({ root: path.join(root, 'snapshots'), index: db.layers });
  const src = path.join(root, 'tmp', 'src');
  mkdirSync(path.join(src, 'etc'), { recursive: true });
  writeFileSync(path.join(src, 'etc', 'hello'), 'hello\n');
  const { diffId } = await createLayerCache({ records: layerRecordsOf(db), store, snapshots }).importLayer(src);
  return { root, db, store, snapshots, records: layerRecordsOf(db), diffId };
}

const sha256 = (b: Buffer): string => `sha256:${createHash('sha256').update(b).digest('hex')}`;

test('two concurrent acquires of a layer unpack it once', async (t) => {
  const f = await fixture(t);
  const cache = createLayerCache(f);
  const [a, b] = await Promise.all([cache.acquire(f.diffId), cache.acquire(f.diffId)]);
  assert.equal(a.snapshotId, b.snapshotId);
  assert.equal(f.db.layers.listSnapshots().length, 1, 'one snapshot unpacked');
  assert.equal(readFileSync(path.join(a.dir, 'etc', 'hello'), 'utf8'), 'hello\n');
  // its bytes on disk are stored when it is unpacked, equal to what GC's walk and du count
  assert.equal(f.db.layers.snapshotSizes().get(a.snapshotId), treeBytes(a.dir));
  assert.equal(f.db.layers.snapshotSizes().get(a.snapshotId), Number(spawnSync('du', ['-s', '-B1', a.dir], { encoding: 'utf8' }).stdout.split('\t')[0]));
  // another cache over the same state finds it unpacked
  assert.equal((await createLayerCache(f).acquire(f.diffId)).snapshotId, a.snapshotId);
  assert.equal(f.db.layers.listSnapshots().length, 1);
});

test('commit writes the digests a plain tar of the upper directory has', async (t) => {
  if (!requireIntegration(t)) return;
  const f = await fixture(t);
  const cache = createLayerCache(f);
  const snap = await cache.mount([f.diffId]);
  writeFileSync(path.join(snap.mountpoint, 'etc', 'added'), 'added\n');
  rmSync(path.join(snap.mountpoint, 'etc', 'hello'));
  const layer = await cache.commit(snap);
  assert.ok(layer);
  const blob = readFileSync(f.store.path(layer.descriptor.digest));
  assert.equal(sha256(blob), layer.descriptor.digest, 'the blob is stored under its digest');
  const tar = gunzipSync(blob);
  assert.equal(sha256(tar), layer.diffId, 'the diffId is the digest of the uncompressed tar');
  assert.equal(tar.length, layer.uncompressedSize);
  const list = spawnSync('tar', ['-tf', '-'], { input: tar, encoding: 'utf8' });
  assert.equal(list.status, 0, list.stderr);
  assert.deepEqual(list.stdout.split('\n').filter(Boolean).sort(), ['etc/', 'etc/.wh.hello', 'etc/added']);
  // the same upper archived again without compression: the same diffId and contentId
  const rec = f.db.layers.getLayer(layer.diffId)!;
  assert.equal(rec.blob, layer.descriptor.digest);
  assert.equal(rec.contentId, layer.contentId);
  const again = await writeLayer({ dir: f.snapshots.dir(rec.snapshotId!), ingester: f.store, compression: 'none', overlay: true });
  assert.equal(again.diffId, layer.diffId);
  assert.equal(again.contentId, layer.contentId);
  assert.deepEqual(cache.usable(layer.diffId), { contentId: layer.contentId });
  // its bytes on disk are stored at commit, equal to what GC's walk and du count
  const dir = f.snapshots.dir(rec.snapshotId!);
  const stored = f.db.layers.snapshotSizes().get(rec.snapshotId!);
  assert.equal(stored, treeBytes(dir));
  assert.equal(stored, Number(spawnSync('du', ['-s', '-B1', dir], { encoding: 'utf8' }).stdout.split('\t')[0]));
  // nothing changed: no layer, and the upper is released
  const empty = await cache.mount([f.diffId, layer.diffId]);
  assert.equal(await cache.commit(empty), null);
});

test('a leased ref survives GC; after the lease is released GC removes it', async (t) => {
  const f = await fixture(t);
  await createLayerCache(f).acquire(f.diffId); // unpacked before the lease: only the lease's ref protects it
  await new Promise((r) => setTimeout(r, 20));
  const lease = acquireLease(f.db.leases);
  const ref = await createLayerCache({ ...f, lease }).acquire(f.diffId);
  const gcState = { root: f.root, db: f.db, store: f.store };
  await prune(gcState, { all: true });
  assert.ok(f.db.layers.getLayer(f.diffId), 'the layer record is kept');
  assert.ok(ref.usable(), 'and its snapshot');
  ref.release();
  assert.equal(ref.usable(), false, 'a released ref is not usable');
  lease.release();
  await prune(gcState, { all: true });
  assert.equal(f.db.layers.getLayer(f.diffId), undefined, 'unleased, the layer is removed');
  assert.equal(readdirSync(path.join(f.root, 'snapshots')).filter((n) => /^\d+$/.test(n)).length, 0, 'and its snapshot');
});

test('a ref whose snapshot dir is removed is not usable; acquiring again unpacks it anew', async (t) => {
  const f = await fixture(t);
  const cache = createLayerCache(f);
  const ref = await cache.acquire(f.diffId);
  assert.ok(ref.usable());
  rmSync(ref.dir, { recursive: true, force: true });
  assert.equal(ref.usable(), false);
  const again = await cache.acquire(f.diffId);
  assert.notEqual(again.snapshotId, ref.snapshotId, 'a new snapshot');
  assert.ok(again.usable());
  assert.equal(readFileSync(path.join(again.dir, 'etc', 'hello'), 'utf8'), 'hello\n');
  // the layer itself stays usable for a cache hit while its blob is there
  assert.ok(cache.usable(f.diffId));
  unlinkSync(f.store.path(f.db.layers.getLayer(f.diffId)!.blob));
  assert.equal(cache.usable(f.diffId), undefined, 'no blob: a hit cannot use it');
});
