import { createHash } from 'node:crypto';
import { createReadStream, promises as fsp } from 'node:fs';
import { Writable, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import { BuildError, isBuildError } from '../../errors/index.js';
import { isDigest, MediaType, type Descriptor, type Digest, type Manifest } from '../../oci/index.js';
import type { BlobInfo, ContentStore } from '../../store/index.js';
import { ANNOTATION_IMAGE_NAME, ANNOTATION_REF_NAME, OCI_LAYOUT } from '../layout.js';
import { checkIndex, checkManifest, parseJson } from '../plan.js';
import type { LoadArchiveOptions, LoadedImage } from '../types.js';
import { cleanEntryName, readArchiveEntries, type ArchiveEntry } from './entries.js';

const BLOB_NAME = /^blobs\/sha256\/([a-f0-9]{64})$/;
/** Files read into memory whatever their size (up to META_LIMIT). */
const META_FILES = new Set(['index.json', 'manifest.json', 'oci-layout', 'repositories']);
const META_LIMIT = 16 << 20;
/** Other files up to this size stay in memory until something references them (most are docker-save v1 leftovers). */
const SMALL_FILE = 1 << 20;
const SMALL_TOTAL = 64 << 20;
const MAX_LINK_HOPS = 40;
const INDEX_TYPES = new Set<string>([MediaType.OciIndex, MediaType.DockerManifestList]);
const MANIFEST_TYPES = new Set<string>([MediaType.OciManifest, MediaType.DockerManifest]);
const OCI_LAYER_ZSTD = 'application/vnd.oci.image.layer.v1.tar+zstd';

/** What one pass over the archive found. */
interface Scan {
  archive: string;
  store: ContentStore;
  signal?: AbortSignal;
  /** Files now in the store, by entry name. */
  blobs: Map<string, BlobInfo>;
  /** Small files kept in memory, by entry name. */
  small: Map<string, Buffer>;
  smallBytes: number;
  /** Link name → target name. */
  links: Map<string, string>;
}

/**
 * Read an OCI image layout (tar or folder) or a `docker save` tar (Docker 25+ or the older `<id>/layer.tar` form,
 * gzip-compressed or not), import every blob into the store checking its digest, and return the images it holds.
 * When the archive has an `index.json` its manifests are used as they are. Otherwise each `manifest.json` entry gets an
 * OCI manifest built for it: the layer blob is the file as stored (`tar`, `tar+gzip` or `tar+zstd` by its magic
 * bytes), checked against the config's diff_ids. Blobs already in the store count as present.
 * Entries with `..` or absolute names are refused (ERR_KILN_ARCHIVE_UNSAFE); bad JSON, corrupt or missing blobs give
 * ERR_KILN_IMAGE_INVALID.
 *
 * @example
 * const images = await loadArchive({ store, source: 'app.tar' });
 * // [{ manifest: 'sha256:…', names: ['docker.io/library/app:1.0'] }]
 */
export async function loadArchive(opts: LoadArchiveOptions): Promise<LoadedImage[]> {
  const scan: Scan = {
    archive: opts.source, store: opts.store, signal: opts.signal,
    blobs: new Map(), small: new Map(), smallBytes: 0, links: new Map(),
  };
  for await (const entry of readArchiveEntries(opts.source, opts.signal)) {
    opts.signal?.throwIfAborted();
    if (entry.type === 'file') await importFile(scan, entry);
    else if ((entry.type === 'symlink' || entry.type === 'link') && entry.target !== undefined) scan.links.set(entry.name, entry.target);
  }
  if (scan.small.has('index.json')) return loadOciLayout(scan);
  if (scan.small.has('manifest.json')) return loadDockerSave(scan);
  throw invalid(`${opts.source} has neither an index.json (OCI image layout) nor a manifest.json (docker save)`);
}

function invalid(message: string, cause?: unknown): BuildError {
  return new BuildError('ERR_KILN_IMAGE_INVALID', message, cause === undefined ? {} : { cause });
}

async function importFile(scan: Scan, entry: ArchiveEntry): Promise<void> {
  const blob = BLOB_NAME.exec(entry.name);
  if (blob) {
    scan.blobs.set(entry.name, await ingest(scan, entry, `sha256:${blob[1]}`));
    return;
  }
  if (META_FILES.has(entry.name)) {
    if (entry.size > META_LIMIT) throw invalid(`${scan.archive}: ${entry.name} is too large (${entry.size} bytes)`);
    scan.small.set(entry.name, await readAll(entry.open()));
    return;
  }
  if (entry.size <= SMALL_FILE && scan.smallBytes + entry.size <= SMALL_TOTAL) {
    scan.small.set(entry.name, await readAll(entry.open()));
    scan.smallBytes += entry.size;
    return;
  }
  scan.blobs.set(entry.name, await ingest(scan, entry));
}

/** Copy an entry into the store; with `expected`, refuse content that does not hash to it. */
async function ingest(scan: Scan, entry: ArchiveEntry, expected?: Digest): Promise<BlobInfo> {
  if (expected && (await scan.store.has(expected))) {
    const got = await hashStream(entry.open(), scan.signal);
    if (got !== expected) throw corrupt(scan, entry.name, got);
    return { digest: expected, size: entry.size };
  }
  const w = await scan.store.writer();
  try {
    await pipeline(entry.open(), w.stream, { signal: scan.signal });
    return await w.commit(expected ? { expected } : {});
  } catch (err) {
    await w.abort();
    if (isBuildError(err) && err.code === 'ERR_KILN_STORE_CORRUPT') throw corrupt(scan, entry.name, undefined, err);
    throw err;
  }
}

function corrupt(scan: Scan, name: string, got?: string, cause?: unknown): BuildError {
  const detail = got ? ` (content hashes to ${got})` : cause instanceof Error ? ` (${cause.message})` : '';
  return invalid(`${scan.archive}: ${name} does not match its digest${detail}; the archive is corrupt`, cause);
}

async function readAll(stream: Readable): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of stream) parts.push(c as Buffer);
  return Buffer.concat(parts);
}

async function hashStream(stream: Readable, signal?: AbortSignal): Promise<Digest> {
  const hash = createHash('sha256');
  await pipeline(stream, new Writable({ write: (c: Buffer, _e, cb) => (hash.update(c), cb()) }), { signal });
  return `sha256:${hash.digest('hex')}`;
}

/** Follow links to the entry that holds the bytes. */
function resolveName(scan: Scan, name: string): string {
  let n = name;
  for (let i = 0; i < MAX_LINK_HOPS; i++) {
    const t = scan.links.get(n);
    if (t === undefined) return n;
    n = t;
  }
  throw invalid(`${scan.archive}: too many levels of links at ${name}`);
}

/** The store blob holding a file of the archive, named by a path from manifest.json. */
async function blobOf(scan: Scan, rawName: string, what: string): Promise<BlobInfo> {
  if (typeof rawName !== 'string') throw invalid(`${scan.archive}: manifest.json has no file name for the ${what}`);
  const name = resolveName(scan, cleanEntryName(rawName, scan.archive));
  const stored = scan.blobs.get(name);
  if (stored) return stored;
  const data = scan.small.get(name);
  if (data === undefined) throw invalid(`${scan.archive} is missing ${rawName} (the ${what})`);
  const info = await scan.store.write(data);
  scan.blobs.set(name, info);
  return info;
}

// ---- OCI image layout ----

async function loadOciLayout(scan: Scan): Promise<LoadedImage[]> {
  const layout = scan.small.get('oci-layout');
  if (layout !== undefined) {
    const version = parseJson(layout, `${scan.archive}: oci-layout`).imageLayoutVersion;
    if (version !== OCI_LAYOUT.imageLayoutVersion) {
      throw invalid(`${scan.archive}: unsupported OCI layout version ${JSON.stringify(version)} (kiln reads ${OCI_LAYOUT.imageLayoutVersion})`);
    }
  }
  const what = `${scan.archive}: index.json`;
  const index = checkIndex(parseJson(scan.small.get('index.json')!, what), what);
  const found = new Map<Digest, string[]>();
  const checked = new Set<Digest>();
  for (const [i, d] of index.manifests.entries()) {
    scan.signal?.throwIfAborted();
    await checkTree(scan, d, `entry ${i + 1} of index.json`, checked);
    const name = d.annotations?.[ANNOTATION_IMAGE_NAME] ?? d.annotations?.[ANNOTATION_REF_NAME];
    const names = found.get(d.digest) ?? [];
    if (name !== undefined && !names.includes(name)) names.push(name);
    found.set(d.digest, names);
  }
  return [...found].map(([manifest, names]) => ({ manifest, names }));
}

/** Check that a blob and (for manifests and indexes) everything it references is in the store, with the right size. */
async function checkTree(scan: Scan, d: Descriptor, what: string, checked: Set<Digest>): Promise<void> {
  if (checked.has(d.digest)) return;
  const info = await scan.store.info(d.digest);
  if (!info) throw invalid(`${scan.archive} is missing blob ${d.digest} (${what})`);
  if (info.size !== d.size) throw invalid(`${scan.archive}: blob ${d.digest} (${what}) has ${info.size} bytes, but its descriptor says ${d.size}`);
  checked.add(d.digest);
  if (INDEX_TYPES.has(d.mediaType)) {
    const index = checkIndex(parseJson(await scan.store.read(d.digest), `index ${d.digest}`), `index ${d.digest}`);
    for (const [i, child] of index.manifests.entries()) await checkTree(scan, child, `entry ${i + 1} of index ${d.digest}`, checked);
  } else if (MANIFEST_TYPES.has(d.mediaType)) {
    const m = checkManifest(parseJson(await scan.store.read(d.digest), `manifest ${d.digest}`), d.digest);
    await checkTree(scan, m.config, `config of manifest ${d.digest}`, checked);
    for (const [i, l] of m.layers.entries()) await checkTree(scan, l, `layer ${i + 1} of manifest ${d.digest}`, checked);
  }
}

// ---- docker save ----

interface DockerSaveEntry {
  Config: string;
  RepoTags?: string[] | null;
  Layers: string[];
}

async function loadDockerSave(scan: Scan): Promise<LoadedImage[]> {
  let doc: unknown;
  try {
    doc = JSON.parse(scan.small.get('manifest.json')!.toString());
  } catch (err) {
    throw invalid(`${scan.archive}: manifest.json is not valid JSON: ${(err as Error).message}`, err);
  }
  if (!Array.isArray(doc)) throw invalid(`${scan.archive}: manifest.json is not a list of images`);
  const found = new Map<Digest, string[]>();
  for (const [i, item] of (doc as unknown[]).entries()) {
    scan.signal?.throwIfAborted();
    const entry = checkDockerEntry(scan, item, i);
    const manifest = await buildManifest(scan, entry, i);
    const info = await scan.store.write(JSON.stringify(manifest));
    const names = found.get(info.digest) ?? [];
    for (const t of entry.RepoTags ?? []) if (!names.includes(t)) names.push(t);
    found.set(info.digest, names);
  }
  return [...found].map(([manifest, names]) => ({ manifest, names }));
}

function checkDockerEntry(scan: Scan, item: unknown, i: number): DockerSaveEntry {
  const e = item as Partial<DockerSaveEntry> | null;
  const ok = e !== null && typeof e === 'object' && typeof e.Config === 'string' &&
    Array.isArray(e.Layers) && e.Layers.every((l) => typeof l === 'string') &&
    (e.RepoTags == null || (Array.isArray(e.RepoTags) && e.RepoTags.every((t) => typeof t === 'string')));
  if (!ok) throw invalid(`${scan.archive}: image ${i + 1} in manifest.json needs Config (a file name), Layers (file names) and RepoTags (names or null)`);
  return e as DockerSaveEntry;
}

/** An OCI manifest for one docker-save image, its layers checked against the config's diff_ids. */
async function buildManifest(scan: Scan, entry: DockerSaveEntry, i: number): Promise<Manifest> {
  const cfg = await blobOf(scan, entry.Config, `config of image ${i + 1}`);
  const config = parseJson(await scan.store.read(cfg.digest), `${scan.archive}: ${entry.Config}`);
  const diffIds = (config.rootfs as { diff_ids?: unknown } | undefined)?.diff_ids;
  if (!Array.isArray(diffIds) || !diffIds.every((d) => typeof d === 'string' && isDigest(d))) {
    throw invalid(`${scan.archive}: config ${entry.Config} has no valid rootfs.diff_ids`);
  }
  if (diffIds.length !== entry.Layers.length) {
    throw invalid(`${scan.archive}: image ${i + 1} has ${entry.Layers.length} layers but its config lists ${diffIds.length} diff_ids`);
  }
  const layers: Descriptor[] = [];
  for (const [j, file] of entry.Layers.entries()) {
    const blob = await blobOf(scan, file, `layer ${j + 1} of image ${i + 1}`);
    const { mediaType, diffId } = await inspectLayer(scan, blob.digest);
    if (diffId !== undefined && diffId !== diffIds[j]) {
      throw invalid(`${scan.archive}: layer ${file} of image ${i + 1} unpacks to ${diffId}, but the config says ${diffIds[j]}`);
    }
    layers.push({ mediaType, digest: blob.digest, size: blob.size });
  }
  return {
    schemaVersion: 2,
    mediaType: MediaType.OciManifest,
    config: { mediaType: MediaType.OciConfig, digest: cfg.digest, size: cfg.size },
    layers,
  };
}

/** The media type of a stored layer by its magic bytes, and its diff_id (undefined for zstd, which is not checked). */
async function inspectLayer(scan: Scan, digest: Digest): Promise<{ mediaType: string; diffId?: Digest }> {
  const file = scan.store.path(digest);
  const head = Buffer.alloc(4);
  const fh = await fsp.open(file, 'r');
  try {
    await fh.read(head, 0, 4, 0);
  } finally {
    await fh.close();
  }
  if (head[0] === 0x1f && head[1] === 0x8b) {
    try {
      return { mediaType: MediaType.OciLayerGzip, diffId: await hashStream(createReadStream(file).pipe(createGunzip()), scan.signal) };
    } catch (err) {
      if ((err as Error).name === 'AbortError') throw err;
      throw invalid(`${scan.archive}: layer ${digest} is not valid gzip: ${(err as Error).message}`, err);
    }
  }
  if (head.readUInt32LE(0) === 0xfd2fb528) return { mediaType: OCI_LAYER_ZSTD };
  return { mediaType: MediaType.OciLayer, diffId: digest };
}
