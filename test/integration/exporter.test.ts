// Checks kiln's image archives against skopeo, an independent OCI/Docker archive reader and writer.
// Needs `skopeo` on PATH; skipped (with a reason) without it, except under CI=true where it must run.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { loadArchive, writeDockerArchive, writeOciLayout } from '../../src/exporter/index.js';
import { makeTinyImage, type TinyImage } from '../helpers/tiny-image.js';
import { sha256 } from '../../src/oci/index.js';
import { createLocalStore, type ContentStore } from '../../src/store/index.js';

const run = promisify(execFile);

async function skopeoMissing(): Promise<string | undefined> {
  try {
    await run('skopeo', ['--version']);
    return undefined;
  } catch (err) {
    return `skopeo is not runnable: ${(err as Error).message}`;
  }
}

async function skopeo(...args: string[]): Promise<string> {
  const { stdout } = await run('skopeo', ['--insecure-policy', ...args], { maxBuffer: 16 << 20 });
  return stdout;
}

const missing = await skopeoMissing();
if (missing && process.env.CI === 'true') throw new Error(`CI=true but ${missing}`);
if (missing) console.log(`# skipping exporter integration tests: ${missing}`);

describe('image archives read by skopeo', { skip: missing }, () => {
  let dir: string;
  let store: ContentStore;
  let img: TinyImage;
  let ociTar: string;
  let ociDir: string;
  let dockerTar: string;

  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'kiln-exporter-it-'));
    store = await createLocalStore({ root: path.join(dir, 'store') });
    img = await makeTinyImage(store);
    ociTar = path.join(dir, 'image-oci.tar');
    ociDir = path.join(dir, 'layout');
    dockerTar = path.join(dir, 'image-docker.tar');
    const images = [{ manifest: img.manifest, names: ['example.com/kiln/test:v1'] }];
    await writeOciLayout({ store, images, dest: ociTar });
    await writeOciLayout({ store, images, dest: ociDir, format: 'dir' });
    await writeDockerArchive({ store, images, dest: dockerTar });
  });
  after(() => rm(dir, { recursive: true, force: true }));

  test('skopeo inspects the OCI tar and reports our manifest digest', async () => {
    const info = JSON.parse(await skopeo('inspect', `oci-archive:${ociTar}`));
    assert.equal(info.Digest, img.manifest);
    assert.deepEqual(info.Layers, img.layers.map((l) => l.digest));
    assert.equal(info.Architecture, 'amd64');
    assert.equal(sha256(await skopeo('inspect', '--raw', `oci-archive:${ociTar}`)), img.manifest);
    const config = JSON.parse(await skopeo('inspect', '--config', '--raw', `oci-archive:${ociTar}`));
    assert.deepEqual(config.rootfs.diff_ids, img.diffIds);
  });

  test('skopeo finds the image in the OCI folder by its ref name', async () => {
    const info = JSON.parse(await skopeo('inspect', `oci:${ociDir}:v1`));
    assert.equal(info.Digest, img.manifest);
    await assert.rejects(skopeo('inspect', `oci:${ociDir}:nope`), /no descriptor found|not found/i);
  });

  test('skopeo copies the OCI tar into a new layout, which kiln loads back', async () => {
    const kept = path.join(dir, 'copied-preserved');
    await skopeo('copy', '--preserve-digests', `oci-archive:${ociTar}`, `oci:${kept}:copied`);
    assert.equal(JSON.parse(await skopeo('inspect', `oci:${kept}:copied`)).Digest, img.manifest);
    const fresh = await createLocalStore({ root: path.join(dir, 'store-copied') });
    assert.deepEqual(await loadArchive({ store: fresh, source: kept }), [{ manifest: img.manifest, names: ['copied'] }]);

    // a plain copy gzips the uncompressed layer, so skopeo's manifest differs from ours; kiln must read it as well
    const other = path.join(dir, 'copied');
    await skopeo('copy', `oci-archive:${ociTar}`, `oci:${other}:copied`);
    const info = JSON.parse(await skopeo('inspect', `oci:${other}:copied`));
    const fresh2 = await createLocalStore({ root: path.join(dir, 'store-copied2') });
    assert.deepEqual(await loadArchive({ store: fresh2, source: other }), [{ manifest: info.Digest, names: ['copied'] }]);
    const manifest = JSON.parse((await fresh2.read(info.Digest)).toString());
    assert.equal(manifest.config.digest, img.config);
  });

  test('skopeo reads the docker archive: same config and diff_ids', async () => {
    const info = JSON.parse(await skopeo('inspect', `docker-archive:${dockerTar}`));
    assert.equal(info.Architecture, 'amd64');
    assert.deepEqual(info.Labels, { tag: 'one' });
    const config = await skopeo('inspect', '--config', '--raw', `docker-archive:${dockerTar}`);
    assert.equal(sha256(config), img.config);
    // the same tar is also an OCI archive
    assert.equal(JSON.parse(await skopeo('inspect', `oci-archive:${dockerTar}`)).Digest, img.manifest);
  });

  test('a docker-archive written by skopeo loads into kiln with the same config and diff_ids', async () => {
    const out = path.join(dir, 'skopeo-docker.tar');
    await skopeo('copy', `oci-archive:${ociTar}`, `docker-archive:${out}:kiln/roundtrip:2`);
    const fresh = await createLocalStore({ root: path.join(dir, 'store-skopeo-docker') });
    const [loaded, ...rest] = await loadArchive({ store: fresh, source: out });
    assert.equal(rest.length, 0);
    assert.deepEqual(loaded.names, ['docker.io/kiln/roundtrip:2']);
    const manifest = JSON.parse((await fresh.read(loaded.manifest)).toString());
    assert.equal(manifest.config.digest, img.config);
    const config = JSON.parse((await fresh.read(manifest.config.digest)).toString());
    assert.deepEqual(config.rootfs.diff_ids, img.diffIds);
    assert.equal(manifest.layers.length, 2);
    for (const l of manifest.layers) assert.ok(await fresh.verify(l.digest));
    // and kiln's export of what it loaded is still readable by skopeo
    const again = path.join(dir, 'again.tar');
    await writeOciLayout({ store: fresh, images: [{ manifest: loaded.manifest, names: ['again:1'] }], dest: again });
    assert.equal(JSON.parse(await skopeo('inspect', `oci-archive:${again}`)).Digest, loaded.manifest);
  });
});
