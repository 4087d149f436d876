import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { digestHex, MediaType, sha256 } from '../../oci/index.js';
import { createLocalStore, type ContentStore } from '../../store/index.js';
import { makeIndex, makeTinyImage, readTar } from '../../../test/helpers/tiny-image.js';
import { writeOciLayout } from './write-oci-layout.js';

async function setup(t: TestContext): Promise<{ dir: string; store: ContentStore }> {
  const dir = await mkdtemp(path.join(tmpdir(), 'kiln-oci-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return { dir, store: await createLocalStore({ root: path.join(dir, 'store') }) };
}

test('OCI layout tar: fixed entry order, zero mtimes, no owner names, BuildKit-style index annotations', async (t) => {
  const { dir, store } = await setup(t);
  const img = await makeTinyImage(store);
  const dest = path.join(dir, 'out.tar');
  await writeOciLayout({ store, images: [{ manifest: img.manifest, names: ['example.com/team/app:1.0', 'app'] }], dest });
  const entries = await readTar(await readFile(dest));
  const blob = (d: string): string => `blobs/sha256/${digestHex(d as `sha256:${string}`)}`;
  assert.deepEqual(entries.map((e) => e.header.name), [
    'blobs/', 'blobs/sha256/', blob(img.manifest), blob(img.config), blob(img.layers[0].digest), blob(img.layers[1].digest), 'oci-layout', 'index.json',
  ]);
  for (const e of entries) {
    assert.equal(e.header.mtime.getTime(), 0, e.header.name);
    assert.equal(e.header.uid, 0);
    assert.equal(e.header.gid, 0);
    assert.equal(e.header.uname, '');
    assert.equal(e.header.gname, '');
    if (e.header.name.startsWith('blobs/sha256/') && e.header.type === 'file') {
      assert.equal(sha256(e.body), `sha256:${path.basename(e.header.name)}`, 'blob bytes match their name');
    }
  }
  const byName = new Map(entries.map((e) => [e.header.name, e.body]));
  assert.deepEqual(JSON.parse(byName.get('oci-layout')!.toString()), { imageLayoutVersion: '1.0.0' });
  const index = JSON.parse(byName.get('index.json')!.toString());
  assert.equal(index.schemaVersion, 2);
  assert.equal(index.mediaType, MediaType.OciIndex);
  assert.deepEqual(index.manifests, [
    { mediaType: MediaType.OciManifest, digest: img.manifest, size: img.manifestSize,
      annotations: { 'io.containerd.image.name': 'example.com/team/app:1.0', 'org.opencontainers.image.ref.name': '1.0' } },
    { mediaType: MediaType.OciManifest, digest: img.manifest, size: img.manifestSize,
      annotations: { 'io.containerd.image.name': 'docker.io/library/app:latest', 'org.opencontainers.image.ref.name': 'latest' } },
  ]);
  assert.deepEqual(byName.get(blob(img.layers[1].digest)), await store.read(img.layers[1].digest));
});

test('the same images give the same tar bytes, from another store too; SOURCE_DATE_EPOCH sets mtimes', async (t) => {
  const { dir, store } = await setup(t);
  const other = await createLocalStore({ root: path.join(dir, 'store2') });
  const a = await makeTinyImage(store);
  const b = await makeTinyImage(other);
  assert.equal(a.manifest, b.manifest);
  const images = [{ manifest: a.manifest, names: ['app:1'] }];
  await writeOciLayout({ store, images, dest: path.join(dir, '1.tar') });
  await writeOciLayout({ store: other, images, dest: path.join(dir, '2.tar') });
  const one = await readFile(path.join(dir, '1.tar'));
  assert.deepEqual(one, await readFile(path.join(dir, '2.tar')));
  await writeOciLayout({ store, images, dest: path.join(dir, '3.tar'), sourceDateEpoch: 1445412480 });
  const three = await readFile(path.join(dir, '3.tar'));
  assert.notDeepEqual(three, one);
  for (const e of await readTar(three)) assert.equal(e.header.mtime.getTime(), 1445412480_000);
  assert.deepEqual((await readdir(dir)).sort(), ['1.tar', '2.tar', '3.tar', 'store', 'store2'], 'no temp files left');
});

test('writes to a stream and ends it', async (t) => {
  const { dir, store } = await setup(t);
  const img = await makeTinyImage(store);
  const out = new PassThrough();
  const parts: Buffer[] = [];
  out.on('data', (c: Buffer) => parts.push(c));
  const ended = new Promise((r) => out.on('end', r));
  await writeOciLayout({ store, images: [{ manifest: img.manifest, names: ['app:1'] }], dest: out });
  await ended;
  const file = path.join(dir, 'same.tar');
  await writeOciLayout({ store, images: [{ manifest: img.manifest, names: ['app:1'] }], dest: file });
  assert.deepEqual(Buffer.concat(parts), await readFile(file));
});

test('dir format writes a layout and adds to an existing one, replacing a re-used name', async (t) => {
  const { dir, store } = await setup(t);
  const one = await makeTinyImage(store, { tag: 'one' });
  const two = await makeTinyImage(store, { tag: 'two' });
  const three = await makeTinyImage(store, { tag: 'three' });
  const layout = path.join(dir, 'layout');
  await writeOciLayout({ store, images: [{ manifest: one.manifest, names: ['app:1'] }, { manifest: two.manifest, names: ['app:2'] }], dest: layout, format: 'dir' });
  const readIndex = async (): Promise<Array<{ digest: string; annotations?: Record<string, string> }>> =>
    JSON.parse(await readFile(path.join(layout, 'index.json'), 'utf8')).manifests;
  assert.deepEqual((await readIndex()).map((m) => m.digest), [one.manifest, two.manifest]);
  assert.deepEqual(JSON.parse(await readFile(path.join(layout, 'oci-layout'), 'utf8')), { imageLayoutVersion: '1.0.0' });
  for (const d of [one.manifest, one.config, ...one.layers.map((l) => l.digest)]) {
    assert.equal(sha256(await readFile(path.join(layout, 'blobs', 'sha256', digestHex(d)))), d);
  }
  await writeOciLayout({ store, images: [{ manifest: three.manifest, names: ['app:2'] }], dest: layout, format: 'dir' });
  const merged = await readIndex();
  assert.deepEqual(merged.map((m) => [m.digest, m.annotations?.['org.opencontainers.image.ref.name']]), [[one.manifest, '1'], [three.manifest, '2']]);
  const names = (await readdir(path.join(layout, 'blobs', 'sha256'))).sort();
  assert.ok(names.every((n) => /^[a-f0-9]{64}$/.test(n)), 'no temp files left');
  assert.ok(names.includes(digestHex(three.manifest)));
});

test('dir format refuses a folder holding another layout version, and a stream destination', async (t) => {
  const { dir, store } = await setup(t);
  const img = await makeTinyImage(store);
  await writeFile(path.join(dir, 'oci-layout'), '{"imageLayoutVersion":"2.0.0"}');
  await assert.rejects(writeOciLayout({ store, images: [{ manifest: img.manifest, names: [] }], dest: dir, format: 'dir' }), { code: 'ERR_KILN_IMAGE_INVALID' });
  await assert.rejects(writeOciLayout({ store, images: [{ manifest: img.manifest, names: [] }], dest: new PassThrough(), format: 'dir' }), { code: 'ERR_KILN_ARGUMENT' });
});

test('an unnamed image gets a bare index entry; an index image is written with its children', async (t) => {
  const { dir, store } = await setup(t);
  const amd = await makeTinyImage(store, { tag: 'amd' });
  const arm = await makeTinyImage(store, { tag: 'arm', architecture: 'arm64' });
  const idx = await makeIndex(store, [amd, arm]);
  const dest = path.join(dir, 'multi.tar');
  await writeOciLayout({ store, images: [{ manifest: idx, names: [] }], dest });
  const entries = await readTar(await readFile(dest));
  const index = JSON.parse(entries.find((e) => e.header.name === 'index.json')!.body.toString());
  assert.deepEqual(index.manifests, [{ mediaType: MediaType.OciIndex, digest: idx, size: (await store.info(idx))!.size }]);
  const blobs = new Set(entries.map((e) => e.header.name));
  for (const d of [idx, amd.manifest, arm.manifest, amd.config, arm.config, ...amd.layers.map((l) => l.digest), ...arm.layers.map((l) => l.digest)]) {
    assert.ok(blobs.has(`blobs/sha256/${digestHex(d)}`), d);
  }
});

test('a missing or corrupt blob, an unknown image or a bad name fails and leaves no file', async (t) => {
  const { dir, store } = await setup(t);
  const img = await makeTinyImage(store);
  const dest = path.join(dir, 'out.tar');
  await assert.rejects(writeOciLayout({ store, images: [{ manifest: sha256('nope'), names: [] }], dest }), { code: 'ERR_KILN_IMAGE_NOT_FOUND' });
  await assert.rejects(writeOciLayout({ store, images: [{ manifest: img.manifest, names: ['Bad Name'] }], dest }), { code: 'ERR_KILN_ARGUMENT' });
  await assert.rejects(writeOciLayout({ store, images: [{ manifest: 'sha256:xyz' as `sha256:${string}`, names: [] }], dest }), { code: 'ERR_KILN_ARGUMENT' });
  const other = await makeTinyImage(store, { tag: 'other' });
  await assert.rejects(writeOciLayout({ store, images: [{ manifest: img.manifest, names: ['a'] }, { manifest: other.manifest, names: ['a:latest'] }], dest }), /given to two images/);

  // same size, different bytes: found only while streaming, after entries were written
  const layer = img.layers[1];
  const good = await readFile(store.path(layer.digest));
  const bad = Buffer.from(good);
  bad[bad.length - 1] ^= 0xff;
  await writeFile(store.path(layer.digest), bad);
  await assert.rejects(writeOciLayout({ store, images: [{ manifest: img.manifest, names: ['app'] }], dest }), (err: { code?: string; message: string }) => {
    assert.equal(err.code, 'ERR_KILN_STORE_CORRUPT');
    assert.match(err.message, new RegExp(layer.digest));
    return true;
  });
  await assert.rejects(writeOciLayout({ store, images: [{ manifest: img.manifest, names: ['app'] }], dest: path.join(dir, 'd'), format: 'dir' }), { code: 'ERR_KILN_STORE_CORRUPT' });
  await writeFile(store.path(layer.digest), good.subarray(1));
  await assert.rejects(writeOciLayout({ store, images: [{ manifest: img.manifest, names: ['app'] }], dest }), { code: 'ERR_KILN_STORE_CORRUPT' });
  await store.delete(layer.digest);
  await assert.rejects(writeOciLayout({ store, images: [{ manifest: img.manifest, names: ['app'] }], dest }), { code: 'ERR_KILN_STORE_NOT_FOUND' });
  assert.deepEqual(await readdir(dir), ['store'], 'no archive, folder or temp file left behind');
});

test('an aborted export rejects and leaves no file', async (t) => {
  const { dir, store } = await setup(t);
  const img = await makeTinyImage(store);
  const ac = new AbortController();
  ac.abort();
  await assert.rejects(writeOciLayout({ store, images: [{ manifest: img.manifest, names: [] }], dest: path.join(dir, 'x.tar'), signal: ac.signal }), { name: 'AbortError' });
  assert.deepEqual(await readdir(dir), ['store']);
});

test('aborting while a layer streams stops the export and destroys the output', async (t) => {
  const { store } = await setup(t);
  const img = await makeTinyImage(store);
  const ac = new AbortController();
  const out = new PassThrough();
  let seen = 0;
  out.on('data', (c: Buffer) => {
    seen += c.length;
    if (seen > 4096) ac.abort();
  });
  out.on('error', () => undefined);
  await assert.rejects(writeOciLayout({ store, images: [{ manifest: img.manifest, names: [] }], dest: out, signal: ac.signal }), { name: 'AbortError' });
  assert.ok(out.destroyed);
  assert.ok(seen < img.layers[1].size, 'stopped before the big layer was written');
});

test('an unwritable destination gives ERR_KILN_ARCHIVE_WRITE', async (t) => {
  const { dir, store } = await setup(t);
  const img = await makeTinyImage(store);
  await assert.rejects(writeOciLayout({ store, images: [{ manifest: img.manifest, names: [] }], dest: path.join(dir, 'no', 'such', 'dir', 'x.tar') }), { code: 'ERR_KILN_ARCHIVE_WRITE' });
});
