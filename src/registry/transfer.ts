import { promises as fsp } from 'node:fs';
import { Writable } from 'node:stream';
import { BuildError, isBuildError } from '../errors/index.js';
import { MediaType, type Descriptor, type Digest, type ImageConfig, type Index, type Manifest, type Platform } from '../oci/index.js';
import type { BlobProvider, ContentStore } from '../store/index.js';
import type { RegistryClient } from './client.js';
import { registryError } from './errors.js';
import type { RegistryRef } from './ref.js';
import type { BlobSource, PushOutcome } from './types.js';

const INDEX_TYPES = new Set<string>([MediaType.OciIndex, MediaType.DockerManifestList]);

/** An image now in the local store. */
export interface PulledImage {
  /** what the reference pointed at (an index for a multi-platform image) */
  root: Descriptor;
  /** the image manifest for the platform (equal to `root` for a single-platform image) */
  manifestDigest: Digest;
  manifest: Manifest;
  config: ImageConfig;
}

/** Options of {@link pullImage}. */
export interface PullImageOptions {
  client: RegistryClient;
  ref: RegistryRef;
  store: ContentStore;
  /** platform to pick from an index (default linux and the host's architecture) */
  platform?: Platform;
  concurrency?: number;
  /** called when a blob starts downloading */
  onBlob?: (d: Descriptor) => void;
  signal?: AbortSignal;
}

/**
 * Pull an image into the content store: the manifest (and index), config and every layer blob not already there,
 * each checked against its digest before it is committed. Registering layers and names is up to the caller.
 *
 * @example
 * const img = await pullImage({ client, ref: parseRegistryRef('localhost:5000/app:1'), store });
 */
export async function pullImage(o: PullImageOptions): Promise<PulledImage> {
  const top = await o.client.getManifest(o.ref, o.signal ? { signal: o.signal } : {});
  await o.store.write(top.data, { expected: top.descriptor.digest });
  let desc = top.descriptor;
  let data = top.data;
  if (INDEX_TYPES.has(desc.mediaType)) {
    const index = parse<Index>(data, `index ${desc.digest}`);
    const pick = pickPlatform(index, o.platform ?? hostPlatform());
    if (!pick) {
      const have = index.manifests.map((m) => (m.platform ? `${m.platform.os}/${m.platform.architecture}` : '?')).join(', ');
      throw new BuildError('ERR_KILN_IMAGE_NOT_FOUND', `${o.ref.host}/${o.ref.repository} has no image for ${(o.platform ?? hostPlatform()).os}/${(o.platform ?? hostPlatform()).architecture} (it has ${have || 'none'})`);
    }
    const child = await o.client.getManifest({ host: o.ref.host, repository: o.ref.repository, digest: pick.digest }, o.signal ? { signal: o.signal } : {});
    await o.store.write(child.data, { expected: child.descriptor.digest });
    desc = child.descriptor;
    data = child.data;
  }
  const manifest = parse<Manifest>(data, `manifest ${desc.digest}`);
  if (!manifest.config || !Array.isArray(manifest.layers)) throw new BuildError('ERR_KILN_IMAGE_INVALID', `${desc.digest} is not an image manifest`);
  await fetchBlobs({ ...o, blobs: [manifest.config, ...manifest.layers] });
  const config = parse<ImageConfig>(await o.store.read(manifest.config.digest), `config ${manifest.config.digest}`);
  return { root: top.descriptor, manifestDigest: desc.digest, manifest, config };
}

/** Download blobs missing from the store, a few at a time, each verified before it is committed. */
export async function fetchBlobs(o: { client: RegistryClient; ref: RegistryRef; store: ContentStore; blobs: Descriptor[]; concurrency?: number; onBlob?: (d: Descriptor) => void; signal?: AbortSignal }): Promise<void> {
  const todo: Descriptor[] = [];
  const seen = new Set<string>();
  for (const b of o.blobs) {
    if (seen.has(b.digest)) continue;
    seen.add(b.digest);
    if (await o.store.has(b.digest)) o.client.noteBlob(o.ref.host, o.ref.repository, b.digest);
    else todo.push(b);
  }
  await eachLimit(todo, o.concurrency ?? 3, async (b) => {
    o.onBlob?.(b);
    await fetchBlobInto({ client: o.client, ref: o.ref, store: o.store, descriptor: b, ...(o.signal ? { signal: o.signal } : {}) });
  });
}

/**
 * Download one blob into the store (verified by the client and again by the store's commit). The body goes through a
 * relay, so a failed download still ends the store's writer normally and its commit — checking the expected digest —
 * throws the partial file away.
 */
export async function fetchBlobInto(o: { client: RegistryClient; ref: RegistryRef; store: ContentStore; descriptor: Descriptor; signal?: AbortSignal }): Promise<void> {
  const w = await o.store.writer();
  const relay = new Writable({
    write(chunk: Buffer, _e, cb) {
      if (w.stream.write(chunk)) cb();
      else w.stream.once('drain', () => cb());
    },
  });
  let failure: unknown;
  try {
    await o.client.fetchBlob({ host: o.ref.host, repository: o.ref.repository, descriptor: o.descriptor, sink: relay, ...(o.signal ? { signal: o.signal } : {}) });
  } catch (err) {
    failure = err;
  }
  try {
    await w.commit({ expected: o.descriptor.digest });
  } catch (err) {
    if (failure !== undefined) throw failure;
    if (isBuildError(err) && err.code === 'ERR_KILN_STORE_CORRUPT') throw registryError('ERR_KILN_REGISTRY_DIGEST', `blob ${o.descriptor.digest} from ${o.ref.host}/${o.ref.repository}: ${err.message}`);
    throw err;
  }
  // the bytes made it and match the digest; only an abort is still worth reporting
  if (failure !== undefined && o.signal?.aborted) throw failure;
}

/** Options of {@link pushImage}. */
export interface PushImageOptions {
  client: RegistryClient;
  store: BlobProvider;
  /** manifest or index in the store */
  manifest: Digest;
  /** where to: the tag (or, without one, the digest) is what the manifest is put under */
  ref: RegistryRef;
  /** other repositories of the same registry that may hold the blobs (tried as mount sources) */
  mountFrom?: string[];
  concurrency?: number;
  onBlob?: (d: Descriptor, outcome: PushOutcome) => void;
  signal?: AbortSignal;
}

/**
 * Push a manifest (or an index and the manifests it lists) with its config and layers from the store: blobs the
 * repository has are skipped, blobs seen elsewhere on the registry are mounted, the rest uploaded; manifests last.
 * Returns the descriptor of what `ref` now points at.
 */
export async function pushImage(o: PushImageOptions): Promise<Descriptor> {
  const data = await o.store.read(o.manifest);
  const doc = parse<Manifest & Index>(data, `manifest ${o.manifest}`);
  const mediaType = doc.mediaType || (Array.isArray(doc.manifests) ? MediaType.OciIndex : MediaType.OciManifest);
  if (INDEX_TYPES.has(mediaType)) {
    for (const child of doc.manifests) {
      if (!(await o.store.has(child.digest))) continue; // a platform kiln never pulled: the registry must have it already
      await pushImage({ ...o, manifest: child.digest, ref: { host: o.ref.host, repository: o.ref.repository, digest: child.digest } });
    }
  } else {
    await pushBlobs({ ...o, blobs: [...doc.layers, doc.config] });
  }
  const reference = o.ref.tag ?? o.manifest;
  const digest = await o.client.putManifest({
    host: o.ref.host, repository: o.ref.repository, reference, data, mediaType, ...(o.signal ? { signal: o.signal } : {}),
  });
  return { mediaType, digest, size: data.length };
}

/** Push blobs from the store to the repository of `ref`, a few at a time. */
export async function pushBlobs(o: { client: RegistryClient; store: BlobProvider; ref: RegistryRef; blobs: Descriptor[]; mountFrom?: string[]; concurrency?: number; onBlob?: (d: Descriptor, outcome: PushOutcome) => void; signal?: AbortSignal }): Promise<void> {
  const unique = [...new Map(o.blobs.map((b) => [b.digest, b])).values()];
  await eachLimit(unique, o.concurrency ?? 3, async (b) => {
    const info = await o.store.info(b.digest);
    if (!info) throw new BuildError('ERR_KILN_STORE_NOT_FOUND', `blob ${b.digest} is not in the local store`);
    const outcome = await o.client.pushBlob({
      host: o.ref.host, repository: o.ref.repository, descriptor: { ...b, size: info.size }, source: fileSource(o.store.path(b.digest), info.size),
      ...(o.mountFrom ? { mountFrom: o.mountFrom } : {}), ...(o.signal ? { signal: o.signal } : {}),
    });
    o.onBlob?.(b, outcome);
  });
}

/** A blob source reading ranges of a file. */
export function fileSource(file: string, size: number): BlobSource {
  return {
    size,
    async read(start, end) {
      const fh = await fsp.open(file, 'r');
      try {
        const buf = Buffer.alloc(end - start);
        let got = 0;
        while (got < buf.length) {
          const { bytesRead } = await fh.read(buf, got, buf.length - got, start + got);
          if (bytesRead === 0) throw new BuildError('ERR_KILN_STORE_CORRUPT', `${file} is shorter than ${size} bytes`);
          got += bytesRead;
        }
        return buf;
      } finally {
        await fh.close();
      }
    },
  };
}

/** A blob source over bytes in memory. */
export function bufferSource(data: Buffer): BlobSource {
  return { size: data.length, read: async (start, end) => data.subarray(start, end) };
}

/** linux and Node's architecture in OCI spelling. */
export function hostPlatform(): Platform {
  const arch = process.arch === 'x64' ? 'amd64' : process.arch === 'ia32' ? '386' : process.arch;
  return { os: 'linux', architecture: arch };
}

function pickPlatform(index: Index, want: Platform): Descriptor | undefined {
  const ok = index.manifests.filter((m) => !INDEX_TYPES.has(m.mediaType) && m.annotations?.['vnd.docker.reference.type'] !== 'attestation-manifest');
  return ok.find((m) => m.platform?.os === want.os && m.platform.architecture === want.architecture && (!want.variant || m.platform.variant === want.variant))
    ?? (ok.length === 1 && !ok[0]!.platform ? ok[0] : undefined);
}

function parse<T>(data: Buffer, what: string): T {
  try {
    return JSON.parse(data.toString('utf8')) as T;
  } catch (cause) {
    throw new BuildError('ERR_KILN_IMAGE_INVALID', `${what} is not valid JSON`, { cause });
  }
}

/** Run `fn` over the items with at most `limit` at once; the first failure is thrown after the running ones settle. */
export async function eachLimit<T>(items: T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  let failed: unknown;
  const worker = async (): Promise<void> => {
    while (failed === undefined && next < items.length) {
      const item = items[next++]!;
      try {
        await fn(item);
      } catch (err) {
        failed ??= err;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  if (failed !== undefined) throw failed;
}
