import { createHash } from 'node:crypto';
import path from 'node:path';
import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import { BuildError, formatUserError } from '../errors/index.js';
import { MediaType, type Descriptor, type Digest, type ImageConfig, type Index, type Manifest } from '../oci/index.js';
import { fetchBlobInto, hostPlatform, eachLimit, parseRegistryRef, type RegistryClient, type RegistryRef } from '../registry/index.js';
import { CACHE_CONFIG_MEDIA_TYPE, INLINE_CACHE_FIELD } from './export.js';
import { copyLayoutBlob, findInLayout, readLayoutBlob } from './layout.js';
import type { CacheConfig, CacheImportReport, CacheImportSpec, CacheLayer, CacheStores } from './types.js';

/** A cache source opened: its records, and how to bring one of its layer blobs into the store. */
export interface OpenedSource {
  name: string;
  cfg: CacheConfig;
  fetchLayer(l: CacheLayer): Promise<void>;
}

/** Options of {@link importCache}. */
export interface ImportCacheOptions {
  stores: CacheStores;
  sources: CacheImportSpec[];
  /** needed for type=registry sources */
  client?: RegistryClient;
  /** parallel layer downloads (default 3) */
  concurrency?: number;
  signal?: AbortSignal;
}

/**
 * `--cache-from`: read each source's records and put them into the local cache, each only after its layer blob is in
 * the store and checked — the blob against its digest, and (for gzip and plain tars) the uncompressed stream against
 * the diffId. A record whose layer fails is dropped, so that step runs again instead of trusting it. Records already
 * in the local cache are kept as they are. A source that cannot be read is a warning, not an error (as in BuildKit:
 * the first build of a branch has no cache yet).
 *
 * @example
 * const r = await importCache({ stores: state, sources: [{ type: 'registry', ref: 'localhost:5000/app:cache' }], client });
 */
export async function importCache(o: ImportCacheOptions): Promise<CacheImportReport> {
  const report: CacheImportReport = { imported: 0, present: 0, dropped: 0, fetched: 0, warnings: [] };
  for (const spec of o.sources) {
    o.signal?.throwIfAborted();
    let src: OpenedSource;
    try {
      src = await openSource(o, spec);
    } catch (err) {
      if ((err as Error).name === 'AbortError' || o.signal?.aborted) throw err;
      report.warnings.push(`cache source ${describe(spec)} skipped: ${oneLine(err)}`);
      continue;
    }
    await applySource(o, src, report);
  }
  return report;
}

function describe(spec: CacheImportSpec): string {
  return spec.type === 'local' ? `type=local,src=${spec.src}` : spec.ref;
}

export function oneLine(err: unknown): string {
  return formatUserError(err).split('\n')[0]!.replace(/^error: /, '');
}

export async function openSource(o: ImportCacheOptions, spec: CacheImportSpec): Promise<OpenedSource> {
  if (spec.type === 'local') {
    const dir = path.resolve(spec.src);
    const top = await findInLayout(dir, spec.tag);
    const manifest = parseJson<Manifest>(await readLayoutBlob(dir, top.digest), `${dir}: manifest`);
    if (manifest.config?.mediaType !== CACHE_CONFIG_MEDIA_TYPE) throw new BuildError('ERR_KILN_CACHE_SOURCE', `${dir}: the entry tagged "${spec.tag}" is not a kiln cache`);
    const cfg = checkConfig(parseJson(await readLayoutBlob(dir, manifest.config.digest), `${dir}: cache config`), dir);
    return { name: dir, cfg, fetchLayer: (l) => copyLayoutBlob({ dir, store: o.stores.store, descriptor: layerDescriptor(l), ...(o.signal ? { signal: o.signal } : {}) }) };
  }
  if (!o.client) throw new Error('importCache: a registry source needs a client');
  const client = o.client;
  const ref = parseRegistryRef(spec.ref);
  const sig = o.signal ? { signal: o.signal } : {};
  let top = await client.getManifest(ref, sig);
  if (top.descriptor.mediaType === MediaType.OciIndex || top.descriptor.mediaType === MediaType.DockerManifestList) {
    const index = parseJson<Index>(top.data, `${spec.ref}: index`);
    const want = hostPlatform();
    const pick = index.manifests.find((m) => m.platform?.os === want.os && m.platform.architecture === want.architecture) ?? index.manifests[0];
    if (!pick) throw new BuildError('ERR_KILN_CACHE_SOURCE', `${spec.ref} is an empty index`);
    top = await client.getManifest({ host: ref.host, repository: ref.repository, digest: pick.digest }, sig);
  }
  const manifest = parseJson<Manifest>(top.data, `${spec.ref}: manifest`);
  if (!manifest.config) throw new BuildError('ERR_KILN_CACHE_SOURCE', `${spec.ref} is not an image or cache manifest`);
  const configData = await fetchSmallBlob(o, client, ref, manifest.config);
  const fetchLayer = (l: CacheLayer): Promise<void> => fetchBlobInto({ client, ref, store: o.stores.store, descriptor: layerDescriptor(l), ...sig });
  if (manifest.config.mediaType === CACHE_CONFIG_MEDIA_TYPE) {
    return { name: spec.ref, cfg: checkConfig(parseJson(configData, `${spec.ref}: cache config`), spec.ref), fetchLayer };
  }
  // an image: its config may carry inline cache, whose layers are the image's own
  const image = parseJson<ImageConfig & Record<string, unknown>>(configData, `${spec.ref}: image config`);
  const inline = image[INLINE_CACHE_FIELD];
  if (inline === undefined) throw new BuildError('ERR_KILN_CACHE_SOURCE', `${spec.ref} is an image without inline cache (build it with --cache-to type=inline)`);
  const cfg = checkConfig(inline, spec.ref);
  const byDiff = new Map<Digest, Descriptor>();
  (image.rootfs?.diff_ids ?? []).forEach((d, i) => manifest.layers[i] && byDiff.set(d, manifest.layers[i]!));
  // the manifest is the authority on which blob holds which diffId
  cfg.layers = cfg.layers.flatMap((l) => {
    const d = byDiff.get(l.diffId);
    return d ? [{ ...l, blob: d.digest, size: d.size, mediaType: d.mediaType }] : [];
  });
  return { name: spec.ref, cfg, fetchLayer };
}

async function fetchSmallBlob(o: ImportCacheOptions, client: RegistryClient, ref: RegistryRef, d: Descriptor): Promise<Buffer> {
  if (!(await o.stores.store.has(d.digest))) await fetchBlobInto({ client, ref, store: o.stores.store, descriptor: d, ...(o.signal ? { signal: o.signal } : {}) });
  return o.stores.store.read(d.digest);
}

/** Bring in each needed layer (verified), then write the records whose layers made it, in one transaction. */
export async function applySource(o: ImportCacheOptions, src: OpenedSource, report: CacheImportReport): Promise<void> {
  const { db } = o.stores;
  const layers = new Map(src.cfg.layers.map((l) => [l.diffId, l]));
  const fresh = src.cfg.records.filter((r) => !db.cacheRecords.getCache(r.key));
  report.present += src.cfg.records.length - fresh.length;
  const needed = [...new Set(fresh.flatMap((r) => (r.diffId ? [r.diffId] : [])))];
  const usable = new Set<Digest>();
  await eachLimit(needed, o.concurrency ?? 3, async (diffId) => {
    const l = layers.get(diffId);
    if (!l) {
      report.warnings.push(`${src.name}: layer ${diffId} is listed by a record but not described; its records are dropped`);
      return;
    }
    try {
      if (await ensureLayer(o, src, l, report)) usable.add(diffId);
    } catch (err) {
      if ((err as Error).name === 'AbortError' || o.signal?.aborted) throw err;
      report.warnings.push(`${src.name}: layer ${l.blob} not imported: ${oneLine(err)}`);
    }
  });
  db.transaction(() => {
    for (const r of fresh) {
      if (r.diffId !== null && !usable.has(r.diffId)) {
        report.dropped++;
        continue;
      }
      db.cacheRecords.putCache({ key: r.key, outputId: r.outputId, diffId: r.diffId, name: r.name, inputs: r.inputs, created: r.created });
      report.imported++;
    }
  });
}

/** The layer is in the store, intact and registered: true. A local copy wins; otherwise it is fetched and checked. */
export async function ensureLayer(o: ImportCacheOptions, src: OpenedSource, l: CacheLayer, report: CacheImportReport): Promise<boolean> {
  const { db, store } = o.stores;
  const local = db.layers.getLayer(l.diffId);
  if (local && (await store.has(local.blob))) return true;
  if (!(await store.has(l.blob))) {
    await src.fetchLayer(l);
    report.fetched++;
  }
  const got = await uncompressedDigest(o, l);
  if (got !== undefined && got !== l.diffId) {
    report.warnings.push(`${src.name}: layer ${l.blob} unpacks to ${got}, not the recorded ${l.diffId}; its records are dropped`);
    return false;
  }
  db.layers.putLayer({ diffId: l.diffId, blob: l.blob, blobSize: l.size, mediaType: l.mediaType, contentId: l.contentId, snapshotId: local?.snapshotId ?? null });
  return true;
}

/** sha256 of the uncompressed tar for gzip and plain layers; undefined for compressions kiln cannot check here. */
async function uncompressedDigest(o: ImportCacheOptions, l: CacheLayer): Promise<Digest | undefined> {
  if (/\+zstd$/.test(l.mediaType)) return undefined;
  if (!/gzip$/.test(l.mediaType)) return l.blob;
  const hash = createHash('sha256');
  const sink = new Writable({
    write(chunk: Buffer, _e, cb) {
      hash.update(chunk);
      cb();
    },
  });
  try {
    await pipeline(o.stores.store.createReadStream(l.blob), createGunzip(), sink, ...(o.signal ? [{ signal: o.signal }] : []));
  } catch (err) {
    if ((err as Error).name === 'AbortError') throw err;
    throw new BuildError('ERR_KILN_ARCHIVE_INVALID', `layer ${l.blob} is not a valid gzip stream: ${(err as Error).message}`, { cause: err });
  }
  return `sha256:${hash.digest('hex')}`;
}

function layerDescriptor(l: CacheLayer): Descriptor {
  return { mediaType: l.mediaType, digest: l.blob, size: l.size };
}

function parseJson<T>(data: Buffer, what: string): T {
  try {
    return JSON.parse(data.toString('utf8')) as T;
  } catch (cause) {
    throw new BuildError('ERR_KILN_CACHE_SOURCE', `${what} is not valid JSON`, { cause });
  }
}

/** Check the shape of a cache config, keeping only well-formed records and layers. */
function checkConfig(v: unknown, where: string): CacheConfig {
  const c = v as Partial<CacheConfig> | null;
  if (!c || typeof c !== 'object' || c.version !== 1 || !Array.isArray(c.records) || !Array.isArray(c.layers)) {
    throw new BuildError('ERR_KILN_CACHE_SOURCE', `${where}: not a kiln cache config of version 1`);
  }
  const digest = (s: unknown): boolean => typeof s === 'string' && /^sha256:[a-f0-9]{64}$/.test(s);
  const records = c.records.filter((r) => r && typeof r.key === 'string' && typeof r.outputId === 'string' && (r.diffId === null || digest(r.diffId)) && typeof r.name === 'string')
    .map((r) => ({ ...r, inputs: r.inputs && typeof r.inputs === 'object' ? r.inputs : {}, created: Number.isFinite(r.created) ? r.created : Date.now() }));
  const layers = c.layers.filter((l) => l && digest(l.diffId) && digest(l.blob) && Number.isSafeInteger(l.size) && typeof l.mediaType === 'string' && typeof l.contentId === 'string');
  return { version: 1, ...(c.mode ? { mode: c.mode } : {}), records, layers };
}
