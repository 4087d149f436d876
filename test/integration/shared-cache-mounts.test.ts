/**
 * Cache mounts in a registry (src/cache-io/mounts.ts) against a real docker-registry: how two writers merge, what
 * an import adds and keeps, and that an index cannot write outside the mount or smuggle in unverified bytes.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, promises as fsp, readFileSync, readlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { registryBlobFile, registryInstalled, skipWithoutRegistry, startRegistry, type TestRegistry } from '../helpers/registry.js';
import { RegistryClient, bufferSource } from '../../src/registry/index.js';
import { exportMount, importMount, mountTag, MOUNT_CONFIG_MEDIA_TYPE, type MountIndex } from '../../src/cache-io/index.js';
import { sha256 } from '../../src/oci/index.js';

async function writeTree(dir: string, files: Record<string, string>): Promise<void> {
  for (const [p, content] of Object.entries(files)) {
    await fsp.mkdir(path.dirname(path.join(dir, p)), { recursive: true });
    await fsp.writeFile(path.join(dir, p), content);
  }
}

describe('cache mounts through a registry: merge, import, safety', { concurrency: false }, () => {
  let reg: TestRegistry | undefined;
  const dirs: string[] = [];
  const tmp = (): string => {
    const d = mkdtempSync(path.join(tmpdir(), 'kiln-mount-'));
    dirs.push(d);
    return d;
  };
  const client = new RegistryClient({ dockerConfig: false });
  const repo = (): { host: string; repository: string } => ({ host: reg!.host, repository: 'team/cache' });

  before(async () => {
    if (!registryInstalled()) return;
    reg = await startRegistry();
  });
  after(async () => {
    await reg?.stop();
    for (const d of dirs) await fsp.rm(d, { recursive: true, force: true });
  });

  const skip = skipWithoutRegistry;

  test('two writers merge: per path the last writer wins, other paths are kept, contents are uploaded once', async (t) => {
    if (skip(t)) return;
    const key = 'pip-merge';
    const x = tmp();
    await writeTree(x, { 'a.txt': 'AAAA', 'same.txt': 'x-version', 'sub/dir/deep.txt': 'deep' });
    await fsp.symlink('a.txt', path.join(x, 'link'));
    const rx = await exportMount({ client, repo: repo(), key, id: '/root/.cache/pip', dir: x, tmpDir: tmp() });
    assert.equal(rx.bytes, 'AAAA'.length + 'x-version'.length + 'deep'.length);

    // a second writer that never imported the first one's files
    const y = tmp();
    await writeTree(y, { 'b.txt': 'BB', 'same.txt': 'y-version', 'dup.txt': 'AAAA' });
    const ry = await exportMount({ client, repo: repo(), key, id: '/root/.cache/pip', dir: y, tmpDir: tmp() });
    assert.equal(ry.bytes, 'BB'.length + 'y-version'.length, 'dup.txt has bytes the registry already holds');

    const z = tmp();
    const rz = await importMount({ client, repo: repo(), key, dir: z, tmpDir: tmp(), stateFile: path.join(tmp(), 'remote.json') });
    assert.equal(readFileSync(path.join(z, 'a.txt'), 'utf8'), 'AAAA');
    assert.equal(readFileSync(path.join(z, 'b.txt'), 'utf8'), 'BB');
    assert.equal(readFileSync(path.join(z, 'dup.txt'), 'utf8'), 'AAAA');
    assert.equal(readFileSync(path.join(z, 'same.txt'), 'utf8'), 'y-version', 'the last writer wins per file');
    assert.equal(readFileSync(path.join(z, 'sub/dir/deep.txt'), 'utf8'), 'deep');
    assert.equal(readlinkSync(path.join(z, 'link')), 'a.txt');
    assert.equal(rz.bytes, 'AAAA'.length * 2 + 'BB'.length + 'y-version'.length + 'deep'.length);
    // exporting what the index already says puts no new manifest
    const before = await client.headManifest({ host: reg!.host, repository: 'team/cache', tag: mountTag(key) });
    const again = await exportMount({ client, repo: repo(), key, id: '/root/.cache/pip', dir: z, tmpDir: tmp() });
    assert.equal(again.bytes, 0);
    assert.equal((await client.headManifest({ host: reg!.host, repository: 'team/cache', tag: mountTag(key) }))?.digest, before?.digest);
    assert.deepEqual((await fsp.readdir(z)).filter((n) => n.startsWith('.kiln')), [], 'no temp files left');
  });

  test('an import adds what the directory lacks, keeps what it has, and an unchanged index costs nothing', async (t) => {
    if (skip(t)) return;
    const key = 'pip-merge';
    const w = tmp();
    await writeTree(w, { 'a.txt': 'local copy' });
    const state = path.join(tmp(), 'remote.json');
    const r1 = await importMount({ client, repo: repo(), key, dir: w, tmpDir: tmp(), stateFile: state });
    assert.equal(readFileSync(path.join(w, 'a.txt'), 'utf8'), 'local copy', 'a file this machine has is never replaced');
    assert.equal(readFileSync(path.join(w, 'b.txt'), 'utf8'), 'BB');
    assert.ok(r1.files > 0);
    await fsp.rm(path.join(w, 'b.txt'));
    const r2 = await importMount({ client, repo: repo(), key, dir: w, tmpDir: tmp(), stateFile: state });
    assert.equal(r2.files, 0, 'the same index is not merged twice');
    assert.equal(existsSync(path.join(w, 'b.txt')), false);
    // an unknown mount is nothing to import
    const none = await importMount({ client, repo: repo(), key: 'never-exported', dir: w, tmpDir: tmp(), stateFile: state });
    assert.equal(none.files, 0);
  });

  test('an index cannot write outside the mount (symlinked parents, ..) nor bring bytes that do not match', async (t) => {
    if (skip(t)) return;
    const key = 'evil';
    const src = tmp();
    await writeTree(src, { 'payload': 'x-payload' });
    await exportMount({ client, repo: repo(), key, id: 'evil', dir: src, tmpDir: tmp() });
    // rewrite the index by hand, as a hostile writer could
    const ref = { host: reg!.host, repository: 'team/cache', tag: mountTag(key) };
    const m = await client.getManifest(ref);
    const manifest = JSON.parse(m.data.toString()) as { config: { digest: string }; layers: unknown[] };
    const index = (await (await fetch(`http://${reg!.host}/v2/team/cache/blobs/${manifest.config.digest}`)).json()) as MountIndex;
    const outside = tmp();
    const payload = index.files.find((f) => f.path === 'payload')!;
    index.files = [
      { ...payload, path: 'evil', type: 'symlink', link: outside, digest: undefined, size: undefined } as MountIndex['files'][number],
      { ...payload, path: 'evil/pwned' },
      { ...payload, path: '../escaped' },
      { ...payload, path: 'ok/inside' },
      // a digest no pack holds
      { ...payload, path: 'ghost', digest: sha256('not in any pack') },
    ];
    const cfg = Buffer.from(JSON.stringify(index));
    const cfgDesc = { mediaType: MOUNT_CONFIG_MEDIA_TYPE, digest: sha256(cfg), size: cfg.length };
    await client.pushBlob({ host: ref.host, repository: ref.repository, descriptor: cfgDesc, source: bufferSource(cfg) });
    const data = Buffer.from(JSON.stringify({ ...manifest, config: cfgDesc }));
    await client.putManifest({ host: ref.host, repository: ref.repository, reference: ref.tag, data, mediaType: 'application/vnd.oci.image.manifest.v1+json' });

    const base = tmp();
    const dest = path.join(base, 'data');
    await fsp.mkdir(dest);
    await importMount({ client, repo: repo(), key, dir: dest, tmpDir: tmp(), stateFile: path.join(base, 'remote.json') });
    assert.deepEqual(await fsp.readdir(outside), [], 'nothing written through the symlink');
    assert.equal(existsSync(path.join(base, 'escaped')), false, 'no .. escape');
    assert.equal(readFileSync(path.join(dest, 'ok/inside'), 'utf8'), 'x-payload');
    assert.equal(existsSync(path.join(dest, 'ghost')), false);

    // a corrupted pack: the import fails (digest checked while downloading) and leaves no file of it
    const blob = (manifest.layers[0] as { digest: string }).digest;
    const file = registryBlobFile(reg!, blob);
    await fsp.writeFile(file, randomBytes((await fsp.stat(file)).size));
    const fresh = tmp();
    await assert.rejects(importMount({ client, repo: repo(), key, dir: fresh, tmpDir: tmp(), stateFile: path.join(tmp(), 'remote.json') }), { code: 'ERR_KILN_REGISTRY_DIGEST' });
    assert.equal(existsSync(path.join(fresh, 'ok/inside')), false, 'no file from the corrupt pack');
    assert.deepEqual(existsSync(path.join(fresh, 'ok')) ? await fsp.readdir(path.join(fresh, 'ok')) : [], [], 'no temp file left');
  });
});
