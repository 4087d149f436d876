import path from 'node:path';
import { MediaType, type Descriptor, type Digest, type Manifest } from '../oci/index.js';
import type { Metadata } from '../metadata/index.js';
import { parseRegistryRef, pushImage, type RegistryClient } from '../registry/index.js';
import { writeCacheLayout } from './layout.js';
import type { CacheConfig, CacheEntry, CacheExportReport, CacheExportSpec, CacheLayer, CacheMode, CacheStores } from './types.js';

/** Media type of kiln's cache config blob (the records); the manifest's layers are the layer blobs they need. */
export const CACHE_CONFIG_MEDIA_TYPE = 'application/vnd.kiln.cache.config.v1+json';
/** Field of an image config that holds inline cache records (`--cache-to type=inline`). */
export const INLINE_CACHE_FIELD = 'kiln.cache.v1';
/** Annotation on each layer of a cache manifest: the layer's diffId. */
export const ANNOTATION_DIFF_ID = 'dev.kiln.cache.diffid';

/**
 * The records with these keys (in order, each once) and the layers they need, read from the metadata store.
 * A record whose layer is no longer known is left out.
 */
export function collectCache(db: Pick<Metadata, 'cacheRecords' | 'layers'>, keys: string[], mode?: CacheMode): CacheConfig {
  const records: CacheEntry[] = [];
  const layers = new Map<Digest, CacheLayer>();
  for (const key of new Set(keys)) {
    const r = db.cacheRecords.getCache(key);
    if (!r) continue;
    if (r.diffId !== null && !layers.has(r.diffId)) {
      const l = db.layers.getLayer(r.diffId);
      if (!l) continue;
      layers.set(r.diffId, { diffId: l.diffId, blob: l.blob, size: l.blobSize, mediaType: l.mediaType, contentId: l.contentId });
    }
    records.push({ key: r.key, outputId: r.outputId, diffId: r.diffId, name: r.name, inputs: r.inputs, created: r.created });
  }
  return { version: 1, ...(mode ? { mode } : {}), records, layers: [...layers.values()] };
}

/**
 * Write the cache config and a manifest over it into the store: an OCI image manifest whose config is the records
 * ({@link CACHE_CONFIG_MEDIA_TYPE}) and whose layers are the layer blobs, so any registry and OCI tool can hold it.
 */
export async function writeCacheManifest(stores: CacheStores, cfg: CacheConfig): Promise<{ descriptor: Descriptor; data: Buffer; blobs: Descriptor[] }> {
  const cfgData = Buffer.from(JSON.stringify(cfg));
  const c = await stores.store.write(cfgData);
  const config: Descriptor = { mediaType: CACHE_CONFIG_MEDIA_TYPE, digest: c.digest, size: c.size };
  const layers: Descriptor[] = cfg.layers.map((l) => ({ mediaType: l.mediaType, digest: l.blob, size: l.size, annotations: { [ANNOTATION_DIFF_ID]: l.diffId } }));
  const manifest: Manifest = { schemaVersion: 2, mediaType: MediaType.OciManifest, config, layers };
  const data = Buffer.from(JSON.stringify(manifest));
  const m = await stores.store.write(data);
  return { descriptor: { mediaType: MediaType.OciManifest, digest: m.digest, size: m.size }, data, blobs: [config, ...layers] };
}

/** Options of {@link exportCache}. */
export interface ExportCacheOptions {
  stores: CacheStores;
  spec: Exclude<CacheExportSpec, { type: 'inline' }>;
  /** cache keys of the final image's chain (mode=min) and of every step built (mode=max) */
  keys: { min: string[]; max: string[] };
  /** needed for type=registry */
  client?: RegistryClient;
  signal?: AbortSignal;
}

/**
 * `--cache-to`: collect the records of the mode's steps with their layers and write them as a cache manifest to an
 * OCI layout folder (type=local) or a registry (type=registry).
 *
 * @example
 * await exportCache({ stores: state, spec: { type: 'local', dest: 'cache', mode: 'max', tag: 'latest' }, keys });
 */
export async function exportCache(o: ExportCacheOptions): Promise<CacheExportReport> {
  const cfg = collectCache(o.stores.db, o.spec.mode === 'max' ? o.keys.max : o.keys.min, o.spec.mode);
  const m = await writeCacheManifest(o.stores, cfg);
  if (o.spec.type === 'local') {
    await writeCacheLayout({ dir: path.resolve(o.spec.dest), store: o.stores.store, manifest: m.descriptor, manifestData: m.data, blobs: m.blobs, tag: o.spec.tag, ...(o.signal ? { signal: o.signal } : {}) });
  } else {
    if (!o.client) throw new Error('exportCache: type=registry needs a client');
    const ref = parseRegistryRef(o.spec.ref);
    await pushImage({ client: o.client, store: o.stores.store, manifest: m.descriptor.digest, ref: { ...ref, tag: ref.tag ?? 'latest' }, ...(o.signal ? { signal: o.signal } : {}) });
  }
  return { records: cfg.records.length, layers: cfg.layers.length, manifest: m.descriptor.digest };
}

/**
 * `--cache-to type=inline`: the records of the final image's chain, for the image config's {@link INLINE_CACHE_FIELD}
 * (only records whose layer is one of the image's own, since that is all an image ref can give back).
 */
export function inlineCache(db: Pick<Metadata, 'cacheRecords' | 'layers'>, keys: string[], imageLayers: Digest[]): CacheConfig {
  const own = new Set(imageLayers);
  const cfg = collectCache(db, keys, 'min');
  const records = cfg.records.filter((r) => r.diffId === null || own.has(r.diffId));
  return { version: 1, mode: 'min', records: records.map(({ inputs: _i, ...r }) => ({ ...r, inputs: {} })), layers: cfg.layers.filter((l) => own.has(l.diffId)) };
}
