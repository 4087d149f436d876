import { digestHex, formatFullRef, MediaType, type Descriptor } from '../oci/index.js';
import type { BlobProvider } from '../store/index.js';
import type { ArchiveSink } from './archive/sink.js';
import { openVerified, type ExportPlan, type PlannedImage } from './plan.js';

/** OCI annotation holding the tag of an index entry. @internal */
export const ANNOTATION_REF_NAME = 'org.opencontainers.image.ref.name';
/** containerd's (and BuildKit's, Docker's) annotation holding the full image name. @internal */
export const ANNOTATION_IMAGE_NAME = 'io.containerd.image.name';
/** Contents of the `oci-layout` file. @internal */
export const OCI_LAYOUT = { imageLayoutVersion: '1.0.0' } as const;

/** Path of a blob inside a layout, `blobs/sha256/<hex>`. @internal */
export function blobPath(d: Descriptor): string {
  return `blobs/sha256/${digestHex(d.digest)}`;
}

/**
 * The `index.json` entries for the images, as BuildKit writes them: one entry per name, carrying the full name in
 * `io.containerd.image.name` and the tag in `org.opencontainers.image.ref.name`; an unnamed image gets one bare entry.
 * @internal
 */
export function indexEntries(images: PlannedImage[]): Descriptor[] {
  const out: Descriptor[] = [];
  for (const image of images) {
    const base = { mediaType: image.descriptor.mediaType, digest: image.descriptor.digest, size: image.descriptor.size };
    if (image.refs.length === 0) out.push(base);
    for (const ref of image.refs) {
      const annotations: Record<string, string> = { [ANNOTATION_IMAGE_NAME]: formatFullRef(ref) };
      if (ref.tag !== undefined) annotations[ANNOTATION_REF_NAME] = ref.tag;
      out.push({ ...base, annotations });
    }
  }
  return out;
}

/** Serialize an image index holding `manifests`. @internal */
export function encodeIndex(manifests: Descriptor[]): Buffer {
  return Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MediaType.OciIndex, manifests }));
}

/**
 * Write the blob folders and every planned blob (skipping ones the sink already has), then `files` in order.
 * @internal
 */
export async function writeBlobsAndFiles(opts: {
  sink: ArchiveSink;
  store: BlobProvider;
  plan: ExportPlan;
  files: Array<[name: string, data: Buffer]>;
  signal?: AbortSignal;
}): Promise<void> {
  const { sink, signal } = opts;
  await sink.directory('blobs');
  await sink.directory('blobs/sha256');
  for (const blob of opts.plan.blobs) {
    signal?.throwIfAborted();
    const name = blobPath(blob.descriptor);
    if (await sink.exists(name)) continue;
    if (blob.data) await sink.file(name, blob.data);
    else await sink.stream(name, blob.descriptor.size, openVerified(opts.store, blob.descriptor, signal));
  }
  for (const [name, data] of opts.files) {
    signal?.throwIfAborted();
    await sink.file(name, data);
  }
}
