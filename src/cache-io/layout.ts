import { createReadStream, promises as fsp } from 'node:fs';
import path from 'node:path';
import { once } from 'node:events';
import { randomBytes } from 'node:crypto';
import { BuildError } from '../errors/index.js';
import { digestHex, isDigest, sha256, type Descriptor, type Digest, type Index } from '../oci/index.js';
import type { BlobProvider, ContentStore } from '../store/index.js';

const REF_NAME = 'org.opencontainers.image.ref.name';
const LAYOUT = JSON.stringify({ imageLayoutVersion: '1.0.0' });

function blobFile(dir: string, d: Digest): string {
  return path.join(dir, 'blobs', 'sha256', digestHex(d));
}

/** Write a file atomically: temp name beside it, then rename. */
async function writeAtomic(file: string, data: Buffer | string): Promise<void> {
  const tmp = `${file}.tmp-${randomBytes(6).toString('hex')}`;
  await fsp.writeFile(tmp, data);
  await fsp.rename(tmp, file);
}

/**
 * Put a manifest and its blobs into an OCI image layout folder, the manifest tagged `tag` in `index.json`
 * (an entry with the same tag is replaced, others kept; blobs already there are not copied again).
 */
export async function writeCacheLayout(o: { dir: string; store: BlobProvider; manifest: Descriptor; manifestData: Buffer; blobs: Descriptor[]; tag: string; signal?: AbortSignal }): Promise<void> {
  try {
    await fsp.mkdir(path.join(o.dir, 'blobs', 'sha256'), { recursive: true });
    for (const b of o.blobs) {
      o.signal?.throwIfAborted();
      const dest = blobFile(o.dir, b.digest);
      const st = await fsp.stat(dest).catch(() => undefined);
      if (st?.size === b.size) continue;
      const tmp = `${dest}.tmp-${randomBytes(6).toString('hex')}`;
      await fsp.copyFile(o.store.path(b.digest), tmp);
      await fsp.rename(tmp, dest);
    }
    await writeAtomic(blobFile(o.dir, o.manifest.digest), o.manifestData);
    await writeAtomic(path.join(o.dir, 'oci-layout'), LAYOUT);
    const old = await readIndex(o.dir).catch(() => undefined);
    const kept = (old?.manifests ?? []).filter((m) => m.annotations?.[REF_NAME] !== o.tag);
    const entry: Descriptor = { mediaType: o.manifest.mediaType, digest: o.manifest.digest, size: o.manifest.size, annotations: { [REF_NAME]: o.tag } };
    const index: Index = { schemaVersion: 2, mediaType: 'application/vnd.oci.image.index.v1+json', manifests: [...kept, entry] };
    await writeAtomic(path.join(o.dir, 'index.json'), JSON.stringify(index));
  } catch (err) {
    if ((err as Error).name === 'AbortError') throw err;
    throw new BuildError('ERR_KILN_ARCHIVE_WRITE', `cannot write the cache to ${o.dir}: ${(err as Error).message}`, { cause: err });
  }
}

async function readIndex(dir: string): Promise<Index> {
  const doc = JSON.parse(await fsp.readFile(path.join(dir, 'index.json'), 'utf8')) as Index;
  if (!Array.isArray(doc.manifests)) throw new Error('index.json has no manifests');
  return doc;
}

/** The descriptor tagged `tag` in the layout's index.json (or its only entry). */
export async function findInLayout(dir: string, tag: string): Promise<Descriptor> {
  let index: Index;
  try {
    index = await readIndex(dir);
  } catch (err) {
    throw new BuildError('ERR_KILN_ARCHIVE_NOT_FOUND', `${dir} is not a cache folder (no readable index.json): ${(err as Error).message}`, { cause: err });
  }
  const hit = index.manifests.filter((m) => m.annotations?.[REF_NAME] === tag).at(-1) ?? (index.manifests.length === 1 ? index.manifests[0] : undefined);
  if (!hit || !isDigest(hit.digest)) throw new BuildError('ERR_KILN_ARCHIVE_NOT_FOUND', `${dir} holds no cache tagged "${tag}"`);
  return hit;
}

/** Read a (small) blob of the layout, checking it against its digest. */
export async function readLayoutBlob(dir: string, d: Digest): Promise<Buffer> {
  const data = await fsp.readFile(blobFile(dir, d));
  const got = sha256(data);
  if (got !== d) throw new BuildError('ERR_KILN_STORE_CORRUPT', `${blobFile(dir, d)} hashes to ${got}, not ${d}`);
  return data;
}

/**
 * Copy a blob of the layout into the store; the store's commit checks it against its digest (a short or unreadable
 * file ends the writer early, so the commit fails and drops the temp file).
 */
export async function copyLayoutBlob(o: { dir: string; descriptor: Descriptor; store: ContentStore; signal?: AbortSignal }): Promise<void> {
  const w = await o.store.writer();
  let failure: unknown;
  try {
    for await (const chunk of createReadStream(blobFile(o.dir, o.descriptor.digest), o.signal ? { signal: o.signal } : {})) {
      if (!w.stream.write(chunk)) await once(w.stream, 'drain');
    }
  } catch (err) {
    failure = err;
  }
  try {
    await w.commit({ expected: o.descriptor.digest });
  } catch (err) {
    throw failure ?? err;
  }
  if (failure !== undefined) throw failure;
}
