import { digestHex, formatFullRef, MediaType, type Descriptor } from '../oci/index.js';
import type { BlobProvider } from '../store/index.js';
import type { ArchiveSink } from './archive/sink.js';
import { asBuildError, openVerified, type ExportPlan, type PlannedImage } from './plan.js';

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

/** What {@link writeLayout} writes: the planned images' blobs, `oci-layout`, `index.json` and any other files. @internal */
export interface WriteLayoutOptions {
  /** opens where the layout goes (a tar or a folder) */
  openSink: () => Promise<ArchiveSink>;
  /** named in errors: a path, or "the output stream" */
  dest: string;
  store: BlobProvider;
  plan: ExportPlan;
  /** the entries of `index.json` */
  index: Descriptor[];
  /** files beside `index.json` (a docker archive's `manifest.json` and `repositories`) */
  files?: Array<[name: string, data: Buffer]>;
  signal?: AbortSignal;
}

/**
 * The body both archive writers share: open the sink, write every blob once (verified as it streams), then
 * `oci-layout`, `index.json` and the other files; a failure aborts the sink (nothing half-written is left as if
 * complete) and comes back as ERR_KILN_ARCHIVE_WRITE naming the destination. @internal
 */
export async function writeLayout(opts: WriteLayoutOptions): Promise<void> {
  const { signal } = opts;
  const files: Array<[string, Buffer]> = [
    ['oci-layout', Buffer.from(JSON.stringify(OCI_LAYOUT))],
    ['index.json', encodeIndex(opts.index)],
    ...(opts.files ?? []),
  ];
  let sink: ArchiveSink;
  try {
    sink = await opts.openSink();
  } catch (err) {
    throw asBuildError(err, 'ERR_KILN_ARCHIVE_WRITE', `cannot write ${opts.dest}`);
  }
  try {
    await sink.directory('blobs');
    await sink.directory('blobs/sha256');
    for (const blob of opts.plan.blobs) {
      signal?.throwIfAborted();
      const name = blobPath(blob.descriptor);
      if (await sink.exists(name)) continue;
      if (blob.data) await sink.file(name, blob.data);
      else await sink.stream(name, blob.descriptor.size, openVerified(opts.store, blob.descriptor, signal));
    }
    for (const [name, data] of files) {
      signal?.throwIfAborted();
      await sink.file(name, data);
    }
    await sink.finish();
  } catch (err) {
    await sink.abort(err);
    throw asBuildError(err, 'ERR_KILN_ARCHIVE_WRITE', `cannot write ${opts.dest}`);
  }
}
