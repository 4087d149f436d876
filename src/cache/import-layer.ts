import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream, promises as fsp, statSync } from 'node:fs';
import { Transform, type Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip, createGzip } from 'node:zlib';
import { BuildError } from '../errors/index.js';
import { writeLayer } from '../layer/index.js';
import { MediaType, type Descriptor, type Digest } from '../oci/index.js';
import type { ContentStore } from '../store/index.js';

/** A layer blob written from outside a build, with its diffId and contentId (docs/glossary.md). */
export interface ImportedBlob {
  descriptor: Descriptor;
  diffId: Digest;
  contentId: string;
}

/**
 * Write `source` as a layer blob: a directory is archived (not an overlay upper: no whiteouts), a tar file is stored
 * as it is when already gzip, else gzipped; the diffId is the digest of the uncompressed tar. A tar kiln did not
 * write has no timestamp-free content digest: its contentId is its diffId.
 */
export async function importBlob(store: ContentStore, source: string): Promise<ImportedBlob> {
  const st = statSync(source, { throwIfNoEntry: false });
  if (!st) throw new BuildError('ERR_KILN_ARGUMENT', `${source}: no such file or directory`);
  if (st.isDirectory()) {
    const info = await writeLayer({ dir: source, ingester: store, compression: 'gzip', overlay: false });
    return { descriptor: { mediaType: info.mediaType, digest: info.digest, size: info.size }, diffId: info.diffId, contentId: info.contentId };
  }
  const w = await store.writer();
  const hash = createHash('sha256');
  const tap = new Transform({
    transform(chunk: Buffer, _e, cb) {
      hash.update(chunk);
      cb(null, chunk);
    },
  });
  const head = await readHead(source);
  try {
    if (head[0] === 0x1f && head[1] === 0x8b) {
      // already gzip: store as is, hash the uncompressed stream for the diffId
      await Promise.all([pipeline(createReadStream(source), w.stream), pipeline(createReadStream(source), createGunzip(), tap, devNull())]);
    } else {
      await pipeline(createReadStream(source), tap, createGzip({ level: 6 }), w.stream);
    }
  } catch (err) {
    await w.abort();
    throw err;
  }
  const info = await w.commit();
  const diffId: Digest = `sha256:${hash.digest('hex')}`;
  return { descriptor: { mediaType: MediaType.OciLayerGzip, digest: info.digest, size: info.size }, diffId, contentId: diffId };
}

async function readHead(file: string): Promise<Buffer> {
  const fh = await fsp.open(file, 'r');
  try {
    const b = Buffer.alloc(4);
    await fh.read(b, 0, 4, 0);
    return b;
  } finally {
    await fh.close();
  }
}

function devNull(): Writable {
  return createWriteStream('/dev/null');
}
