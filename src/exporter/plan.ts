import { createHash } from 'node:crypto';
import { addAbortSignal, pipeline, Transform, type Readable } from 'node:stream';
import { BuildError, isBuildError, type ErrorCode } from '../errors/index.js';
import { formatFullRef, isDigest, MediaType, normalizeImageName, type Descriptor, type Digest, type ImageConfig, type ImageRef, type Index, type Manifest } from '../oci/index.js';
import type { BlobProvider } from '../store/index.js';
import type { ExportImage } from './types.js';

/** A blob to copy into the archive; small JSON blobs come with their (verified) bytes. @internal */
export interface PlannedBlob {
  descriptor: Descriptor;
  data?: Buffer;
}

/** One image root (manifest or index) with its names. @internal */
export interface PlannedImage {
  descriptor: Descriptor;
  /** The image's names, normalized (`latest` added), without duplicates. */
  refs: ImageRef[];
  /** Set when the root is a single image manifest. */
  manifest?: Manifest;
  config?: ImageConfig;
}

/** Everything an archive writer needs: roots in the caller's order and blobs in a fixed order, without duplicates. @internal */
export interface ExportPlan {
  images: PlannedImage[];
  blobs: PlannedBlob[];
}

const INDEX_TYPES = new Set<string>([MediaType.OciIndex, MediaType.DockerManifestList]);
const MANIFEST_TYPES = new Set<string>([MediaType.OciManifest, MediaType.DockerManifest]);

/**
 * Read each image's manifest (or index) and config, check that every blob they reference is in the store with the
 * size the descriptor gives, and list the blobs in the order they are met (manifest, config, layers).
 * @internal
 */
export async function planExport(opts: { store: BlobProvider; images: ExportImage[]; signal?: AbortSignal }): Promise<ExportPlan> {
  const blobs = new Map<Digest, PlannedBlob>();
  const images: PlannedImage[] = [];
  const refs = resolveNames(opts.images);
  for (const [i, image] of opts.images.entries()) {
    opts.signal?.throwIfAborted();
    const root = await readRoot(opts.store, image.manifest);
    images.push({ ...root, refs: refs[i] });
    await walk({ store: opts.store, blobs, descriptor: root.descriptor, data: root.data, signal: opts.signal });
  }
  return { images, blobs: [...blobs.values()] };
}

/** Normalize every name; refuse bad digests and a name given to two different images. */
function resolveNames(images: ExportImage[]): ImageRef[][] {
  const owner = new Map<string, Digest>();
  return images.map((image) => {
    if (!isDigest(image.manifest)) throw new BuildError('ERR_KILN_ARGUMENT', `"${image.manifest}" is not a sha256 digest`);
    const refs = new Map<string, ImageRef>();
    for (const name of image.names) {
      const ref = normalizeImageName(name);
      const full = formatFullRef(ref);
      const prev = owner.get(full);
      if (prev !== undefined && prev !== image.manifest) {
        throw new BuildError('ERR_KILN_ARGUMENT', `the name ${full} is given to two images (${prev} and ${image.manifest})`);
      }
      owner.set(full, image.manifest);
      refs.set(full, ref);
    }
    return [...refs.values()];
  });
}

async function readRoot(store: BlobProvider, digest: Digest): Promise<Omit<PlannedImage, 'refs'> & { data: Buffer }> {
  if (!(await store.has(digest))) {
    throw new BuildError('ERR_KILN_IMAGE_NOT_FOUND', `image manifest ${digest} is not in the store`);
  }
  const data = await store.read(digest);
  const doc = parseJson(data, `manifest ${digest}`);
  const mediaType = typeof doc.mediaType === 'string' ? doc.mediaType : Array.isArray(doc.manifests) ? MediaType.OciIndex : MediaType.OciManifest;
  const descriptor: Descriptor = { mediaType, digest, size: data.length };
  if (INDEX_TYPES.has(mediaType)) return { descriptor, data };
  const manifest = checkManifest(doc, digest);
  const config = parseJson(await readBlob(store, manifest.config, `config of ${digest}`), `config ${manifest.config.digest}`) as unknown as ImageConfig;
  return { descriptor, data, manifest, config };
}

async function walk(opts: { store: BlobProvider; blobs: Map<Digest, PlannedBlob>; descriptor: Descriptor; data?: Buffer; signal?: AbortSignal }): Promise<void> {
  const { store, blobs, descriptor } = opts;
  if (blobs.has(descriptor.digest)) return;
  opts.signal?.throwIfAborted();
  const isIndex = INDEX_TYPES.has(descriptor.mediaType);
  const isManifest = MANIFEST_TYPES.has(descriptor.mediaType);
  if (!isIndex && !isManifest) {
    await checkBlob(store, descriptor, 'blob');
    blobs.set(descriptor.digest, { descriptor });
    return;
  }
  const data = opts.data ?? (await readBlob(store, descriptor, descriptor.mediaType));
  blobs.set(descriptor.digest, { descriptor, data });
  const doc = parseJson(data, `${isIndex ? 'index' : 'manifest'} ${descriptor.digest}`);
  if (isIndex) {
    const index = checkIndex(doc, descriptor.digest);
    for (const child of index.manifests) await walk({ ...opts, descriptor: child, data: undefined });
    return;
  }
  const manifest = checkManifest(doc, descriptor.digest);
  if (!blobs.has(manifest.config.digest)) {
    blobs.set(manifest.config.digest, { descriptor: manifest.config, data: await readBlob(store, manifest.config, `config of ${descriptor.digest}`) });
  }
  for (const [i, layer] of manifest.layers.entries()) {
    if (blobs.has(layer.digest)) continue;
    await checkBlob(store, layer, `layer ${i + 1} of ${descriptor.digest}`);
    blobs.set(layer.digest, { descriptor: layer });
  }
}

async function checkBlob(store: BlobProvider, d: Descriptor, what: string): Promise<void> {
  const info = await store.info(d.digest);
  if (!info) throw new BuildError('ERR_KILN_STORE_NOT_FOUND', `blob ${d.digest} (${what}) is not in the store`);
  if (info.size !== d.size) {
    throw new BuildError('ERR_KILN_STORE_CORRUPT', `blob ${d.digest} (${what}) has ${info.size} bytes in the store, but its descriptor says ${d.size}`);
  }
}

async function readBlob(store: BlobProvider, d: Descriptor, what: string): Promise<Buffer> {
  await checkBlob(store, d, what);
  return store.read(d.digest);
}

/** Parse JSON into an object, or throw ERR_KILN_IMAGE_INVALID naming `what`. @internal */
export function parseJson(data: Buffer | string, what: string): Record<string, unknown> {
  let doc: unknown;
  try {
    doc = JSON.parse(data.toString());
  } catch (err) {
    throw new BuildError('ERR_KILN_IMAGE_INVALID', `${what} is not valid JSON: ${(err as Error).message}`, { cause: err });
  }
  if (doc === null || typeof doc !== 'object' || Array.isArray(doc)) throw new BuildError('ERR_KILN_IMAGE_INVALID', `${what} is not a JSON object`);
  return doc as Record<string, unknown>;
}

/** Check a descriptor's required fields (mediaType, sha256 digest, size). @internal */
export function checkDescriptor(v: unknown, what: string): Descriptor {
  const d = v as Partial<Descriptor> | null;
  const ok = d !== null && typeof d === 'object' && typeof d.mediaType === 'string' && typeof d.digest === 'string' &&
    isDigest(d.digest) && Number.isSafeInteger(d.size) && (d.size as number) >= 0;
  if (!ok) throw new BuildError('ERR_KILN_IMAGE_INVALID', `${what} is not a valid descriptor (it needs mediaType, a sha256 digest and a size)`);
  return d as Descriptor;
}

/** Check the shape of an image manifest. @internal */
export function checkManifest(doc: Record<string, unknown>, digest: string): Manifest {
  if (doc.schemaVersion !== 2) throw new BuildError('ERR_KILN_IMAGE_INVALID', `manifest ${digest} has schemaVersion ${String(doc.schemaVersion)}, expected 2`);
  if (!Array.isArray(doc.layers)) throw new BuildError('ERR_KILN_IMAGE_INVALID', `manifest ${digest} has no layers array`);
  checkDescriptor(doc.config, `the config of manifest ${digest}`);
  doc.layers.forEach((l, i) => checkDescriptor(l, `layer ${i + 1} of manifest ${digest}`));
  return doc as unknown as Manifest;
}

/** Check the shape of an image index. @internal */
export function checkIndex(doc: Record<string, unknown>, what: string): Index {
  if (doc.schemaVersion !== 2) throw new BuildError('ERR_KILN_IMAGE_INVALID', `${what} has schemaVersion ${String(doc.schemaVersion)}, expected 2`);
  if (!Array.isArray(doc.manifests)) throw new BuildError('ERR_KILN_IMAGE_INVALID', `${what} has no manifests array`);
  doc.manifests.forEach((m, i) => checkDescriptor(m, `entry ${i + 1} of ${what}`));
  return doc as unknown as Index;
}

/** Stream a blob from the store, failing with ERR_KILN_STORE_CORRUPT at the end when its bytes do not hash to its digest. @internal */
export function openVerified(store: BlobProvider, d: Descriptor, signal?: AbortSignal): Readable {
  const hash = createHash('sha256');
  const check = new Transform({
    transform(chunk: Buffer, _enc, cb) {
      hash.update(chunk);
      cb(null, chunk);
    },
    flush(cb) {
      const got = `sha256:${hash.digest('hex')}`;
      cb(got === d.digest ? null : new BuildError('ERR_KILN_STORE_CORRUPT', `blob ${d.digest} in the store is corrupt (content hashes to ${got})`));
    },
  });
  const out = pipeline(store.createReadStream(d.digest), check, () => undefined);
  return signal ? addAbortSignal(signal, out) : out;
}

/** Wrap a plain (I/O) error as a BuildError with `code`; BuildErrors and aborts pass through. @internal */
export function asBuildError(err: unknown, code: ErrorCode, message: string): unknown {
  if (isBuildError(err) || (err as Error)?.name === 'AbortError') return err;
  return new BuildError(code, `${message}: ${(err as Error)?.message ?? String(err)}`, { cause: err });
}
