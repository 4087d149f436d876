/**
 * The upload stores of `kiln serve` (src/service/uploads.ts) and context materialization from them
 * (src/server/context.ts): one suite for the folder store and the registry-blob store (against a real
 * docker-registry on loopback), then what only the registry store does: blobs kept referenced through registry GC,
 * reads on a second "worker" root downloading exactly the manifest's blobs once, corrupt registry content refused.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, promises as fsp, readFileSync, readdirSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { REGISTRY_BIN, registryBlobFile, registryInstalled, skipWithoutRegistry, startRegistry, type TestRegistry } from '../helpers/registry.js';
import { RegistryClient } from '../../src/registry/index.js';
import { isBuildError } from '../../src/errors/index.js';
import { openLocalUploads, openRegistryUploads, teamUploadsRef, type ManifestEntry, type UploadStore } from '../../src/service/index.js';
import { materializeContext } from '../../src/server/context.js';

const digestOf = (b: Buffer): string => `sha256:${createHash('sha256').update(b).digest('hex')}`;
const code = (c: string) => (err: unknown): boolean => isBuildError(err) && err.code === c;

/** A body that sends some bytes and then fails, as a client connection reset mid-upload does. */
function droppedBody(part: Buffer): Readable {
  let sent = false;
  return new Readable({
    read() {
      if (!sent) {
        sent = true;
        this.push(part);
      } else this.destroy(Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' }));
    },
  });
}

/** Files (not subfolders) under a folder, recursively. */
function filesUnder(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { recursive: true, withFileTypes: true }).filter((e) => e.isFile()).map((e) => path.join(e.parentPath, e.name));
}

describe('upload stores', { concurrency: false }, () => {
  let reg: TestRegistry | undefined;
  const dirs: string[] = [];
  const tmp = (): string => {
    const d = mkdtempSync(path.join(tmpdir(), 'kiln-uploads-'));
    dirs.push(d);
    return d;
  };
  /** GET requests for blobs, as the registry saw them (every worker's client shares this fetch) */
  const blobGets: string[] = [];
  const countingFetch: typeof fetch = (input, init) => {
    const url = typeof input === 'string' ? input : input instanceof URL ? input.href : input.url;
    if ((init?.method ?? 'GET') === 'GET' && /\/blobs\/sha256:/.test(url)) blobGets.push(url);
    return fetch(input, init);
  };
  /** small chunks, so the larger test files go up as PATCH chunks */
  const client = (): RegistryClient => new RegistryClient({ dockerConfig: false, chunkSize: 64 << 10, fetch: countingFetch });
  const ref = (team: string) => teamUploadsRef({ host: reg!.host, repository: 'kiln' }, team);
  const registryStore = (team: string, cacheDir = path.join(tmp(), 'uploads'), cacheUploads = true) => openRegistryUploads({ client: client(), ref: ref(team), cacheDir, cacheUploads });
  /** is the blob in the registry? (its own HEAD, not the store's) */
  const inRegistry = async (team: string, digest: string): Promise<boolean> => (await fetch(`http://${reg!.host}/v2/${ref(team).repository}/blobs/${digest}`, { method: 'HEAD' })).status === 200;

  before(async () => {
    if (registryInstalled()) reg = await startRegistry();
  });
  after(async () => {
    await reg?.stop();
    for (const d of dirs) await fsp.rm(d, { recursive: true, force: true });
  });

  const kinds: Array<{ name: string; open: (team: string) => Promise<{ store: UploadStore; stored: (d: string) => Promise<boolean>; leftovers: () => string[] }> }> = [
    {
      name: 'folder',
      open: async () => {
        const dir = path.join(tmp(), 'uploads');
        const store = await openLocalUploads(dir);
        return { store, stored: async (d) => existsSync(store.path(d)), leftovers: () => filesUnder(dir) };
      },
    },
    {
      name: 'registry',
      open: async (team) => {
        const cacheDir = path.join(tmp(), 'uploads');
        const store = await registryStore(team, cacheDir);
        return { store, stored: (d) => inRegistry(team, d), leftovers: () => filesUnder(cacheDir) };
      },
    },
  ];

  for (const kind of kinds) {
    test(`${kind.name}: missing, put, has, size, open`, async (t) => {
      if (kind.name === 'registry' && skipWithoutRegistry(t)) return;
      const { store, stored } = await kind.open(`t-${kind.name}-1`);
      const small = Buffer.from('hello uploads\n');
      const big = randomBytes(300_000);
      const absent = digestOf(Buffer.from('never sent'));
      assert.deepEqual(await store.missing([digestOf(small), digestOf(big), digestOf(small)]), [digestOf(small), digestOf(big)]);
      assert.equal(await store.put(digestOf(small), Readable.from([small]), 1 << 20), small.length);
      assert.equal(await store.put(digestOf(big), Readable.from([big.subarray(0, 100_000), big.subarray(100_000)]), 1 << 20), big.length);
      assert.deepEqual(await store.missing([digestOf(small), absent, digestOf(big)]), [absent]);
      assert.equal(await store.has(digestOf(big)), true);
      assert.equal(await store.has(absent), false);
      assert.equal(await stored(digestOf(big)), true);
      assert.equal(await store.size(digestOf(big)), big.length);
      assert.equal(await store.size(absent), undefined);
      const chunks: Buffer[] = [];
      for await (const c of await store.open(digestOf(big))) chunks.push(c as Buffer);
      assert.ok(Buffer.concat(chunks).equals(big));
      if (kind.name === 'registry') assert.ok(readFileSync(registryBlobFile(reg!, digestOf(big))).equals(big), 'the registry holds the bytes');
    });

    test(`${kind.name}: wrong bytes, an oversized body and a dropped stream store nothing`, async (t) => {
      if (kind.name === 'registry' && skipWithoutRegistry(t)) return;
      const { store, stored, leftovers } = await kind.open(`t-${kind.name}-2`);
      const claimed = digestOf(Buffer.from('the real bytes'));
      await assert.rejects(store.put(claimed, Readable.from([Buffer.from('other bytes')]), 1 << 20), code('ERR_KILN_UPLOAD_DIGEST'));
      const big = randomBytes(200_000);
      await assert.rejects(store.put(digestOf(big), Readable.from([big]), 100_000), code('ERR_KILN_LIMIT_EXCEEDED'));
      await assert.rejects(store.put(digestOf(big), droppedBody(big.subarray(0, 150_000)), 1 << 20), /socket hang up/);
      for (const d of [claimed, digestOf(big)]) {
        assert.equal(await stored(d), false, `${d} must not be stored`);
        assert.equal(await store.has(d), false);
      }
      assert.deepEqual(await store.missing([claimed, digestOf(big)]), [claimed, digestOf(big)]);
      assert.deepEqual(leftovers(), [], 'no blob and no temp file is left');
      // the same upload sent whole afterwards is stored
      assert.equal(await store.put(digestOf(big), Readable.from([big]), 1 << 20), big.length);
      assert.equal(await stored(digestOf(big)), true);
    });
  }

  test('registry: a build\'s blobs survive registry garbage collection, unreferenced ones do not', async (t) => {
    if (skipWithoutRegistry(t)) return;
    const store = await registryStore('t-gc');
    const kept = [Buffer.from('kept one'), randomBytes(150_000)];
    const loose = Buffer.from('uploaded, never built');
    for (const b of [...kept, loose]) await store.put(digestOf(b), Readable.from([b]), 1 << 20);
    await store.retain('b123', kept.map(digestOf));
    const m = await fetch(`http://${reg!.host}/v2/${ref('t-gc').repository}/manifests/upload-b123`, { headers: { accept: 'application/vnd.oci.image.manifest.v1+json' } });
    assert.equal(m.status, 200);
    const manifest = (await m.json()) as { layers: Array<{ digest: string; size: number }> };
    assert.deepEqual(manifest.layers.map((l) => l.digest).sort(), kept.map(digestOf).sort());
    assert.deepEqual(manifest.layers.map((l) => l.size).sort((a, b) => a - b), kept.map((b) => b.length).sort((a, b) => a - b));
    await assert.rejects(store.retain('b124', [digestOf(Buffer.from('not uploaded'))]), code('ERR_KILN_SERVICE_REQUEST'));
    execFileSync(REGISTRY_BIN, ['garbage-collect', path.join(path.dirname(reg!.storage), 'config.yml')], { stdio: 'ignore' });
    assert.equal(existsSync(registryBlobFile(reg!, digestOf(loose))), false, 'GC removed the unreferenced upload (the test can tell)');
    for (const b of kept) assert.ok(readFileSync(registryBlobFile(reg!, digestOf(b))).equals(b), 'a retained blob is still there');
    assert.deepEqual(await store.missing([...kept, loose].map(digestOf)), [digestOf(loose)]);
  });

  test('registry: a second worker materializes a context downloading exactly its blobs, then none', async (t) => {
    if (skipWithoutRegistry(t)) return;
    const files: Record<string, Buffer> = {
      'Dockerfile': Buffer.from('FROM busybox\nCOPY . /app\n'),
      'src/a.txt': Buffer.from('alpha\n'),
      'src/same-as-a.txt': Buffer.from('alpha\n'),
      'src/big.bin': randomBytes(400_000),
      'bin/tool': Buffer.from('#!/bin/sh\necho tool\n'),
    };
    const entries = (fs: Record<string, Buffer>): ManifestEntry[] => [
      { path: 'bin', type: 'dir', mode: 0o755 },
      { path: 'src', type: 'dir', mode: 0o750 },
      ...Object.entries(fs).map(([p, b]): ManifestEntry => ({ path: p, type: 'file', mode: p === 'bin/tool' ? 0o755 : 0o644, size: b.length, digest: digestOf(b) })),
      // a hardlink of a file that sorts after it
      { path: 'src/hard.txt', type: 'file', mode: 0o644, size: 6, digest: digestOf(files['src/a.txt']!), linkOf: 'src/same-as-a.txt' },
      { path: 'link', type: 'symlink', mode: 0o777, target: 'src/a.txt' },
    ];
    const distinct = new Set(Object.values(files).map(digestOf));
    // an API-only node receives the uploads (and keeps no copy)
    const apiCache = path.join(tmp(), 'uploads');
    const api = await registryStore('t-mat', apiCache, false);
    for (const d of await api.missing(Object.values(files).map(digestOf))) {
      const b = Object.values(files).find((x) => digestOf(x) === d)!;
      await api.put(d, Readable.from([b]), 1 << 20);
    }
    assert.deepEqual(filesUnder(apiCache), [], 'the API node kept no copy');
    // worker B: a fresh root, an empty cache
    const rootB = tmp();
    const workerB = await registryStore('t-mat', path.join(rootB, 'uploads'));
    const dirB = path.join(rootB, 'contexts', 'one');
    blobGets.length = 0;
    const first = await materializeContext({ dir: dirB, entries: entries(files), uploads: workerB });
    assert.equal(blobGets.length, distinct.size, `downloads: ${blobGets.join(', ')}`);
    assert.deepEqual(new Set(blobGets.map((u) => u.slice(u.lastIndexOf('/') + 1))), distinct, 'exactly the manifest\'s blobs');
    assert.equal(first.fetched, distinct.size);
    assert.equal(first.fetchedBytes, [...distinct].reduce((n, d) => n + Object.values(files).find((b) => digestOf(b) === d)!.length, 0));
    for (const [p, b] of Object.entries(files)) assert.ok(readFileSync(path.join(dirB, p)).equals(b), p);
    assert.equal(statSync(path.join(dirB, 'bin/tool')).mode & 0o777, 0o755);
    assert.equal(statSync(path.join(dirB, 'src')).mode & 0o777, 0o750);
    assert.equal(statSync(path.join(dirB, 'src/hard.txt')).ino, statSync(path.join(dirB, 'src/same-as-a.txt')).ino);
    assert.equal(readFileSync(path.join(dirB, 'link'), 'utf8'), 'alpha\n');

    // the same build again on B: nothing downloaded, nothing rewritten
    blobGets.length = 0;
    const inode = statSync(path.join(dirB, 'src/big.bin')).ino;
    const again = await materializeContext({ dir: dirB, entries: entries(files), uploads: workerB });
    assert.equal(blobGets.length, 0);
    assert.deepEqual(again, { written: 0, fetched: 0, fetchedBytes: 0 });
    // another template with the same files on B: written from B's cache, still nothing downloaded
    const other = await materializeContext({ dir: path.join(rootB, 'contexts', 'two'), entries: entries(files), uploads: workerB });
    assert.equal(blobGets.length, 0);
    assert.equal(other.fetched, 0);
    assert.ok(other.written >= Object.keys(files).length);

    // one file changed: one blob downloaded, one entry rewritten, the others keep their inodes
    const changed = { ...files, 'src/a.txt': Buffer.from('alpha, changed\n') };
    await api.put(digestOf(changed['src/a.txt']), Readable.from([changed['src/a.txt']]), 1 << 20);
    const next = entries(changed);
    const third = await materializeContext({ dir: dirB, entries: next, uploads: workerB });
    assert.equal(blobGets.length, 1);
    assert.equal(third.fetched, 1);
    assert.equal(third.written, 1, 'only src/a.txt');
    assert.equal(readFileSync(path.join(dirB, 'src/a.txt'), 'utf8'), 'alpha, changed\n');
    assert.equal(statSync(path.join(dirB, 'src/big.bin')).ino, inode);

    // a file nobody uploaded: refused naming the file, the folder left as it was
    const missing = [...next, { path: 'extra.txt', type: 'file' as const, mode: 0o644, size: 3, digest: digestOf(Buffer.from('no\n')) }];
    await assert.rejects(materializeContext({ dir: dirB, entries: missing, uploads: workerB }), (err: unknown) => code('ERR_KILN_SERVICE_REQUEST')(err) && /extra\.txt/.test((err as Error).message));
    assert.equal(readFileSync(path.join(dirB, 'src/a.txt'), 'utf8'), 'alpha, changed\n');
  });

  test('registry: bytes that do not match their digest in the registry are refused and not cached', async (t) => {
    if (skipWithoutRegistry(t)) return;
    const good = randomBytes(100_000);
    const api = await registryStore('t-corrupt');
    await api.put(digestOf(good), Readable.from([good]), 1 << 20);
    // the registry's copy rots (same length, other bytes)
    await fsp.writeFile(registryBlobFile(reg!, digestOf(good)), randomBytes(good.length));
    const cacheDir = path.join(tmp(), 'uploads');
    const worker = await registryStore('t-corrupt', cacheDir);
    const entries: ManifestEntry[] = [{ path: 'data.bin', type: 'file', mode: 0o644, size: good.length, digest: digestOf(good) }];
    await assert.rejects(materializeContext({ dir: path.join(tmp(), 'ctx'), entries, uploads: worker }), code('ERR_KILN_REGISTRY_DIGEST'));
    assert.deepEqual(filesUnder(cacheDir), [], 'nothing cached');
  });
});
