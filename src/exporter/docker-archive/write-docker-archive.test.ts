import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { digestHex, MediaType } from '../../oci/index.js';
import { createLocalStore } from '../../store/index.js';
import { makeIndex, makeTinyImage, readTar } from '../../../test/helpers/tiny-image.js';
import { writeDockerArchive } from './write-docker-archive.js';

test('docker archive: manifest.json and repositories point into blobs/sha256, next to an OCI index', async (t) => {
  const dir = await mkdtemp(path.join(tmpdir(), 'kiln-docker-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const store = await createLocalStore({ root: path.join(dir, 'store') });
  const one = await makeTinyImage(store, { tag: 'one' });
  const two = await makeTinyImage(store, { tag: 'two' });
  const dest = path.join(dir, 'out.tar');
  await writeDockerArchive({
    store,
    images: [
      { manifest: one.manifest, names: ['docker.io/library/app:1', 'example.com/team/app:stable'] },
      { manifest: two.manifest, names: [] },
      { manifest: one.manifest, names: ['user/app'] },
    ],
    dest,
  });
  const entries = await readTar(await readFile(dest));
  const names = entries.map((e) => e.header.name);
  assert.deepEqual(names.slice(-4), ['oci-layout', 'index.json', 'manifest.json', 'repositories']);
  assert.equal(new Set(names).size, names.length, 'no duplicate entries');
  const byName = new Map(entries.map((e) => [e.header.name, e.body]));
  const blob = (d: string): string => `blobs/sha256/${digestHex(d as `sha256:${string}`)}`;
  assert.deepEqual(JSON.parse(byName.get('manifest.json')!.toString()), [
    { Config: blob(one.config), RepoTags: ['app:1', 'example.com/team/app:stable', 'user/app:latest'], Layers: one.layers.map((l) => blob(l.digest)) },
    { Config: blob(two.config), RepoTags: [], Layers: two.layers.map((l) => blob(l.digest)) },
  ]);
  const top = digestHex(one.layers[1].digest);
  assert.deepEqual(JSON.parse(byName.get('repositories')!.toString()), {
    app: { '1': top }, 'example.com/team/app': { stable: top }, 'user/app': { latest: top },
  });
  const index = JSON.parse(byName.get('index.json')!.toString());
  assert.deepEqual(index.manifests.map((m: { digest: string; annotations?: Record<string, string> }) => [m.digest, m.annotations?.['io.containerd.image.name']]), [
    [one.manifest, 'docker.io/library/app:1'],
    [one.manifest, 'example.com/team/app:stable'],
    [two.manifest, undefined],
    [one.manifest, 'docker.io/user/app:latest'],
  ]);
  for (const d of [one.config, ...one.layers.map((l) => l.digest), two.manifest]) assert.ok(byName.has(blob(d)), d);
  // gzip layers are stored as they are
  assert.deepEqual(byName.get(blob(one.layers[0].digest)), await store.read(one.layers[0].digest));
  assert.equal(one.layers[0].mediaType, MediaType.OciLayerGzip);

  const again = path.join(dir, 'again.tar');
  await writeDockerArchive({ store, images: [{ manifest: one.manifest, names: ['docker.io/library/app:1', 'example.com/team/app:stable'] }, { manifest: two.manifest, names: [] }, { manifest: one.manifest, names: ['user/app'] }], dest: again });
  assert.deepEqual(await readFile(again), await readFile(dest), 'deterministic');
});

test('docker archive: no repositories file without tags; an index image is refused', async (t) => {
  const dir = await mkdtemp(path.join(tmpdir(), 'kiln-docker-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const store = await createLocalStore({ root: path.join(dir, 'store') });
  const one = await makeTinyImage(store, { tag: 'one' });
  const two = await makeTinyImage(store, { tag: 'two' });
  const dest = path.join(dir, 'untagged.tar');
  await writeDockerArchive({ store, images: [{ manifest: one.manifest, names: [`app@${one.manifest}`] }], dest });
  const entries = await readTar(await readFile(dest));
  assert.ok(!entries.some((e) => e.header.name === 'repositories'));
  assert.deepEqual(JSON.parse(entries.find((e) => e.header.name === 'manifest.json')!.body.toString())[0].RepoTags, []);
  const idx = await makeIndex(store, [one, two]);
  await assert.rejects(writeDockerArchive({ store, images: [{ manifest: idx, names: ['multi:1'] }], dest: path.join(dir, 'multi.tar') }), { code: 'ERR_KILN_NOT_SUPPORTED' });
  assert.deepEqual((await readdir(dir)).sort(), ['store', 'untagged.tar']);
});
