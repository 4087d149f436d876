import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import { digestHex, MediaType, sha256, type Digest } from '../../oci/index.js';
import { createLocalStore, type ContentStore } from '../../store/index.js';
import { writeDockerArchive } from '../docker-archive/write-docker-archive.js';
import { writeOciLayout } from '../oci-layout/write-oci-layout.js';
import { makeIndex, makeTar, makeTarEntries, makeTinyImage, readTar, type TarInput, type TinyImage } from '../../../test/helpers/tiny-image.js';
import { loadArchive } from './load-archive.js';

interface Ctx { dir: string; store: ContentStore; img: TinyImage; fresh(): Promise<ContentStore> }

async function setup(t: TestContext): Promise<Ctx> {
  const dir = await mkdtemp(path.join(tmpdir(), 'kiln-load-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const store = await createLocalStore({ root: path.join(dir, 'store') });
  let n = 0;
  return { dir, store, img: await makeTinyImage(store), fresh: () => createLocalStore({ root: path.join(dir, `fresh-${n++}`) }) };
}

/** Rewrite a tar through `edit`, keeping entry order. */
async function rewrite(file: string, edit: (entries: TarInput[]) => TarInput[]): Promise<Buffer> {
  const entries = (await readTar(await readFile(file))).map((e) => ({ name: e.header.name, type: e.header.type as TarInput['type'], body: e.body }));
  return makeTarEntries(edit(entries));
}

async function assertImageIn(store: ContentStore, img: TinyImage): Promise<void> {
  for (const d of [img.manifest, img.config, ...img.layers.map((l) => l.digest)]) assert.ok(await store.verify(d), `${d} is in the store`);
}

test('OCI layout tar, gzip tar and folder load back with the same manifest digest and names', async (t) => {
  const { dir, store, img, fresh } = await setup(t);
  const tarFile = path.join(dir, 'oci.tar');
  await writeOciLayout({ store, images: [{ manifest: img.manifest, names: ['example.com/a/b:1', 'b:2'] }], dest: tarFile });
  const s1 = await fresh();
  assert.deepEqual(await loadArchive({ store: s1, source: tarFile }), [{ manifest: img.manifest, names: ['example.com/a/b:1', 'docker.io/library/b:2'] }]);
  await assertImageIn(s1, img);

  const gz = path.join(dir, 'oci.tar.gz');
  await writeFile(gz, gzipSync(await readFile(tarFile)));
  const s2 = await fresh();
  assert.deepEqual((await loadArchive({ store: s2, source: gz })).map((i) => i.manifest), [img.manifest]);
  await assertImageIn(s2, img);

  const folder = path.join(dir, 'layout');
  await writeOciLayout({ store, images: [{ manifest: img.manifest, names: ['b:2'] }], dest: folder, format: 'dir' });
  const s3 = await fresh();
  assert.deepEqual(await loadArchive({ store: s3, source: folder }), [{ manifest: img.manifest, names: ['docker.io/library/b:2'] }]);
  await assertImageIn(s3, img);
  // loading again into a store that has everything is fine
  assert.deepEqual((await loadArchive({ store: s3, source: tarFile })).map((i) => i.manifest), [img.manifest]);
});

test('an index image loads with all its platforms; a ref-name-only entry keeps that name', async (t) => {
  const { dir, store, img, fresh } = await setup(t);
  const arm = await makeTinyImage(store, { tag: 'arm', architecture: 'arm64' });
  const idx = await makeIndex(store, [img, arm]);
  const file = path.join(dir, 'multi.tar');
  await writeOciLayout({ store, images: [{ manifest: idx, names: ['multi:1'] }], dest: file });
  const edited = path.join(dir, 'edited.tar');
  await writeFile(edited, await rewrite(file, (es) => es.map((e) => {
    if (e.name !== 'index.json') return e;
    const index = JSON.parse(e.body!.toString());
    delete index.manifests[0].annotations['io.containerd.image.name'];
    return { ...e, body: JSON.stringify(index) };
  })));
  const s = await fresh();
  assert.deepEqual(await loadArchive({ store: s, source: edited }), [{ manifest: idx, names: ['1'] }]);
  await assertImageIn(s, img);
  await assertImageIn(s, arm);
});

test('a docker archive from writeDockerArchive loads through its index.json with the same manifest', async (t) => {
  const { dir, store, img, fresh } = await setup(t);
  const file = path.join(dir, 'docker.tar');
  await writeDockerArchive({ store, images: [{ manifest: img.manifest, names: ['app:1'] }], dest: file });
  const s = await fresh();
  assert.deepEqual(await loadArchive({ store: s, source: file }), [{ manifest: img.manifest, names: ['docker.io/library/app:1'] }]);
  await assertImageIn(s, img);
});

test('a docker-save tar without index.json gets an OCI manifest with the same config, diff_ids and layer files', async (t) => {
  const { dir, store, img, fresh } = await setup(t);
  const file = path.join(dir, 'docker.tar');
  await writeDockerArchive({ store, images: [{ manifest: img.manifest, names: ['app:1', 'example.com/x:y'] }], dest: file });
  const legacy = path.join(dir, 'legacy.tar');
  await writeFile(legacy, await rewrite(file, (es) => es.filter((e) => e.name !== 'index.json' && e.name !== 'oci-layout')));
  const s = await fresh();
  const [loaded, ...rest] = await loadArchive({ store: s, source: legacy });
  assert.equal(rest.length, 0);
  assert.deepEqual(loaded.names, ['app:1', 'example.com/x:y']);
  const manifest = JSON.parse((await s.read(loaded.manifest)).toString());
  assert.equal(manifest.mediaType, MediaType.OciManifest);
  assert.equal(manifest.config.digest, img.config);
  assert.equal(manifest.config.mediaType, MediaType.OciConfig);
  assert.deepEqual(manifest.layers, [
    { mediaType: MediaType.OciLayerGzip, digest: img.layers[0].digest, size: img.layers[0].size },
    { mediaType: MediaType.OciLayer, digest: img.layers[1].digest, size: img.layers[1].size },
  ]);
  const config = JSON.parse((await s.read(manifest.config.digest)).toString());
  assert.deepEqual(config.rootfs.diff_ids, img.diffIds);
  for (const l of manifest.layers) assert.ok(await s.verify(l.digest));
});

/** An old-style `docker save`: `<id>/layer.tar` (uncompressed), `<id>/json`, a duplicate layer as a symlink. */
async function legacyDockerSave(opts: { diffIds?: Digest[]; extra?: TarInput[] } = {}): Promise<{ tar: Buffer; config: Digest; layer: Buffer }> {
  const layer = await makeTar({ 'bin/hello': '#!/bin/sh\necho hi\n' });
  const diff = sha256(layer);
  const config = JSON.stringify({ architecture: 'amd64', os: 'linux', config: {}, rootfs: { type: 'layers', diff_ids: opts.diffIds ?? [diff, diff] } });
  const cfg = sha256(config);
  const id1 = 'a'.repeat(64);
  const id2 = 'b'.repeat(64);
  const tar = await makeTarEntries([
    { name: `${id1}/`, type: 'directory' },
    { name: `${id1}/VERSION`, body: '1.0' },
    { name: `${id1}/json`, body: '{}' },
    { name: `${id1}/layer.tar`, body: layer },
    { name: `${id2}/`, type: 'directory' },
    { name: `${id2}/layer.tar`, type: 'symlink', linkname: `../${id1}/layer.tar` },
    { name: `${digestHex(cfg)}.json`, body: config },
    ...(opts.extra ?? []),
    { name: 'manifest.json', body: JSON.stringify([{ Config: `${digestHex(cfg)}.json`, RepoTags: ['old:1'], Layers: [`${id1}/layer.tar`, `${id2}/layer.tar`] }]) },
    { name: 'repositories', body: JSON.stringify({ old: { '1': id2 } }) },
  ]);
  return { tar, config: cfg, layer };
}

test('an old-format docker save (<id>/layer.tar, symlinked duplicate layer) loads', async (t) => {
  const { dir, fresh } = await setup(t);
  const { tar, config, layer } = await legacyDockerSave();
  const file = path.join(dir, 'old.tar');
  await writeFile(file, tar);
  const s = await fresh();
  const [img] = await loadArchive({ store: s, source: file });
  assert.deepEqual(img.names, ['old:1']);
  const manifest = JSON.parse((await s.read(img.manifest)).toString());
  assert.equal(manifest.config.digest, config);
  const l = { mediaType: MediaType.OciLayer, digest: sha256(layer), size: layer.length };
  assert.deepEqual(manifest.layers, [l, l]);
  assert.ok(await s.verify(sha256(layer)));
  assert.ok(!(await s.has(sha256('{}'))), 'unreferenced v1 json files are not stored');
});

test('entries leaving the archive are refused with ERR_KILN_ARCHIVE_UNSAFE', async (t) => {
  const { dir, fresh } = await setup(t);
  const hostile: TarInput[][] = [
    [{ name: '../x', body: 'evil' }],
    [{ name: '/etc/evil', body: 'evil' }],
    [{ name: 'blobs/../../x', body: 'evil' }],
    [{ name: 'link', type: 'symlink', linkname: '../../etc/passwd' }],
    [{ name: 'link', type: 'symlink', linkname: '/etc/passwd' }],
    [{ name: 'hard', type: 'link', linkname: '../outside' }],
  ];
  for (const [i, entries] of hostile.entries()) {
    const file = path.join(dir, `evil-${i}.tar`);
    const { tar } = await legacyDockerSave({ extra: entries });
    await writeFile(file, tar);
    await assert.rejects(loadArchive({ store: await fresh(), source: file }), (err: { code?: string; message: string }) => {
      assert.equal(err.code, 'ERR_KILN_ARCHIVE_UNSAFE', JSON.stringify(entries));
      assert.match(err.message, /unsafe entry|outside the archive/);
      return true;
    });
  }
  const viaManifest = path.join(dir, 'evil-manifest.tar');
  await writeFile(viaManifest, await makeTarEntries([{ name: 'manifest.json', body: JSON.stringify([{ Config: '../../etc/passwd', RepoTags: null, Layers: [] }]) }]));
  await assert.rejects(loadArchive({ store: await fresh(), source: viaManifest }), { code: 'ERR_KILN_ARCHIVE_UNSAFE' });
});

test('a corrupted or missing blob is refused with ERR_KILN_IMAGE_INVALID', async (t) => {
  const { dir, store, img, fresh } = await setup(t);
  const file = path.join(dir, 'oci.tar');
  await writeOciLayout({ store, images: [{ manifest: img.manifest, names: ['app:1'] }], dest: file });
  const layerName = `blobs/sha256/${digestHex(img.layers[1].digest)}`;
  const corrupt = path.join(dir, 'corrupt.tar');
  await writeFile(corrupt, await rewrite(file, (es) => es.map((e) => {
    if (e.name !== layerName) return e;
    const body = Buffer.from(e.body!);
    body[100] ^= 0x01;
    return { ...e, body };
  })));
  const s = await fresh();
  await assert.rejects(loadArchive({ store: s, source: corrupt }), (err: { code?: string; message: string }) => {
    assert.equal(err.code, 'ERR_KILN_IMAGE_INVALID');
    assert.match(err.message, new RegExp(`${layerName} does not match its digest`));
    return true;
  });
  assert.equal(await s.has(img.layers[1].digest), false);
  // also when the store already holds the blob (only hashed, not written)
  await assert.rejects(loadArchive({ store, source: corrupt }), /does not match its digest/);

  const missing = path.join(dir, 'missing.tar');
  await writeFile(missing, await rewrite(file, (es) => es.filter((e) => e.name !== layerName)));
  await assert.rejects(loadArchive({ store: await fresh(), source: missing }), (err: { code?: string; message: string }) => {
    assert.equal(err.code, 'ERR_KILN_IMAGE_INVALID');
    assert.match(err.message, new RegExp(`missing blob ${img.layers[1].digest} \\(layer 2 of manifest`));
    return true;
  });
});

test('bad archives give ERR_KILN_IMAGE_INVALID or ERR_KILN_ARCHIVE_NOT_FOUND with a clear message', async (t) => {
  const { dir, fresh } = await setup(t);
  const cases: Array<[string, Buffer, RegExp]> = [
    ['bad-index', await makeTarEntries([{ name: 'oci-layout', body: '{"imageLayoutVersion":"1.0.0"}' }, { name: 'index.json', body: '{"schemaVersion":2,' }]), /index\.json is not valid JSON/],
    ['index-no-manifests', await makeTarEntries([{ name: 'index.json', body: '{"schemaVersion":2}' }]), /has no manifests array/],
    ['bad-descriptor', await makeTarEntries([{ name: 'index.json', body: '{"schemaVersion":2,"manifests":[{"digest":"sha256:1"}]}' }]), /entry 1 of .* is not a valid descriptor/],
    ['layout-version', await makeTarEntries([{ name: 'oci-layout', body: '{"imageLayoutVersion":"9"}' }, { name: 'index.json', body: '{"schemaVersion":2,"manifests":[]}' }]), /unsupported OCI layout version/],
    ['bad-manifest-json', await makeTarEntries([{ name: 'manifest.json', body: 'nope' }]), /manifest\.json is not valid JSON/],
    ['manifest-not-list', await makeTarEntries([{ name: 'manifest.json', body: '{}' }]), /not a list of images/],
    ['manifest-entry', await makeTarEntries([{ name: 'manifest.json', body: '[{"Config":1}]' }]), /needs Config/],
    ['missing-config', await makeTarEntries([{ name: 'manifest.json', body: '[{"Config":"c.json","Layers":[]}]' }]), /missing c\.json \(the config of image 1\)/],
    ['empty', await makeTarEntries([{ name: 'hello', body: 'x' }]), /neither an index\.json .* nor a manifest\.json/],
    ['not-a-tar', Buffer.alloc(4096, 'garbage'), /is not a readable tar archive/],
    ['diff-mismatch', (await legacyDockerSave({ diffIds: [sha256('a'), sha256('b')] })).tar, /unpacks to sha256:[a-f0-9]{64}, but the config says/],
    ['layer-count', (await legacyDockerSave({ diffIds: [sha256('a')] })).tar, /has 2 layers but its config lists 1 diff_ids/],
  ];
  for (const [name, data, message] of cases) {
    const file = path.join(dir, `${name}.tar`);
    await writeFile(file, data);
    await assert.rejects(loadArchive({ store: await fresh(), source: file }), (err: { code?: string; message: string }) => {
      assert.equal(err.code, 'ERR_KILN_IMAGE_INVALID', name);
      assert.match(err.message, message, name);
      return true;
    }, name);
  }
  await assert.rejects(loadArchive({ store: await fresh(), source: path.join(dir, 'nope.tar') }), { code: 'ERR_KILN_ARCHIVE_NOT_FOUND' });
});

test('a gzip docker-save layer that does not match its diff_id is refused', async (t) => {
  const { dir, fresh } = await setup(t);
  const layer = await makeTar({ a: 'a' });
  const gz = gzipSync(layer);
  const config = JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [sha256('other')] } });
  const file = path.join(dir, 'gz.tar');
  await writeFile(file, await makeTarEntries([
    { name: 'c.json', body: config },
    { name: 'l.tar.gz', body: gz },
    { name: 'manifest.json', body: JSON.stringify([{ Config: 'c.json', RepoTags: null, Layers: ['l.tar.gz'] }]) },
  ]));
  await assert.rejects(loadArchive({ store: await fresh(), source: file }), /unpacks to .* but the config says/);
  const good = JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [sha256(layer)] } });
  await writeFile(file, await makeTarEntries([
    { name: 'c.json', body: good },
    { name: 'l.tar.gz', body: gz },
    { name: 'manifest.json', body: JSON.stringify([{ Config: 'c.json', RepoTags: null, Layers: ['l.tar.gz'] }]) },
  ]));
  const s = await fresh();
  const [img] = await loadArchive({ store: s, source: file });
  assert.deepEqual(img.names, []);
  const manifest = JSON.parse((await s.read(img.manifest)).toString());
  assert.deepEqual(manifest.layers, [{ mediaType: MediaType.OciLayerGzip, digest: sha256(gz), size: gz.length }]);
});

test('loading stops when aborted', async (t) => {
  const { dir, store, img, fresh } = await setup(t);
  const file = path.join(dir, 'oci.tar');
  await writeOciLayout({ store, images: [{ manifest: img.manifest, names: [] }], dest: file });
  const ac = new AbortController();
  ac.abort();
  await assert.rejects(loadArchive({ store: await fresh(), source: file, signal: ac.signal }), { name: 'AbortError' });
});
