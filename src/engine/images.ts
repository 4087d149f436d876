import path from 'node:path';
import { BuildError } from '../errors/index.js';
import { DEFAULT_PATH, MediaType, canonicalJson, isDigest, localImageName, type Descriptor, type Digest, type ImageConfig, type Index, type Manifest } from '../oci/index.js';
import type { LocalImage } from '../ops/index.js';
import { trace } from '../progress/index.js';
import { layerCache } from './rootfs.js';
import type { Blobs, Records, State } from './state.js';
import { isNotFound } from '../errors/index.js';
import { parseRegistryRef, pullImage, RegistryClient, type RegistryOptions } from '../registry/index.js';

/** `busybox` → `busybox:latest`; `docker.io/library/x` → `x:latest`; digests kept (oci's localImageName). */
export function normalizeRef(ref: string): string {
  return localImageName(ref);
}

export function nodeArch(): string {
  return process.arch === 'x64' ? 'amd64' : process.arch;
}

async function readJson<T>(s: Blobs, d: Digest): Promise<T> {
  return JSON.parse((await s.store.read(d)).toString('utf8')) as T;
}

/** Look an image up in the local image store. */
export async function loadLocalImage(s: Blobs & Records<'images'>, ref: string): Promise<LocalImage> {
  const name = normalizeRef(ref);
  let manifestDigest: Digest | undefined;
  const at = name.indexOf('@');
  const bare = ref.trim();
  if (isDigest(bare) && (await s.store.has(bare))) {
    // an image by its manifest digest, as `kiln images` and --metadata-file print it
    manifestDigest = bare;
  } else if (at >= 0) {
    const d = name.slice(at + 1);
    if (isDigest(d) && (await s.store.has(d))) manifestDigest = d;
    else {
      const byName = s.db.images.getImage(name.slice(0, at)) ?? s.db.images.getImage(normalizeRef(name.slice(0, at)));
      if (byName) manifestDigest = byName.manifest;
    }
  } else manifestDigest = s.db.images.getImage(name)?.manifest;
  if (!manifestDigest) {
    throw new BuildError('ERR_KILN_IMAGE_NOT_FOUND', `image "${ref}" is not in the local store`, {
      hint: 'import it with `kiln import ROOTFS.tar NAME:TAG` or `kiln load FILE` (kiln images lists what is there)',
    });
  }
  let manifest = await readJson<Manifest | Index>(s, manifestDigest);
  if ('manifests' in manifest) {
    const pick = manifest.manifests.find((m) => !m.platform || (m.platform.os === 'linux' && m.platform.architecture === nodeArch())) ?? manifest.manifests[0];
    if (!pick) throw new BuildError('ERR_KILN_IMAGE_INVALID', `image "${ref}" has an empty index`);
    manifestDigest = pick.digest;
    manifest = await readJson<Manifest>(s, manifestDigest);
  }
  const m = manifest as Manifest;
  const config = await readJson<ImageConfig>(s, m.config.digest);
  config.config = config.config ?? {};
  return { ref: name, manifestDigest, manifest: m, config, configDescriptor: m.config };
}

/** Options of {@link pullToState} and {@link resolveImage}. */
export interface PullOptions {
  registry?: RegistryOptions;
  /** the client to use, made only when a pull happens (a build shares one: tokens, known blob locations) */
  client?: () => RegistryClient;
  /** told when a pull starts */
  onPull?: (ref: string) => void;
  signal?: AbortSignal;
}

/** `kiln pull`: fetch the image from its registry into the store, register its layers and name it. */
export async function pullToState(s: State, ref: string, opts: PullOptions = {}): Promise<LocalImage> {
  const r = parseRegistryRef(ref);
  opts.onPull?.(ref);
  const img = await pullImage({ client: opts.client?.() ?? new RegistryClient(opts.registry), ref: r, store: s.store, ...(opts.signal ? { signal: opts.signal } : {}) });
  registerLayers(s, img.manifest, img.config);
  await unpackImage(s, img.config, opts.signal);
  if (r.digest) return loadLocalImage(s, `${normalizeRef(ref).split('@')[0]}@${img.manifestDigest}`);
  s.db.images.putImage({ name: normalizeRef(ref), manifest: img.manifestDigest, created: Date.now() });
  return loadLocalImage(s, ref);
}

/** A local image, else pulled from its registry (FROM of an image that is not here yet). */
export async function resolveImage(s: State, ref: string, opts: PullOptions = {}): Promise<LocalImage> {
  try {
    return await loadLocalImage(s, ref);
  } catch (err) {
    if (!isNotFound(err)) throw err;
    try {
      return await pullToState(s, ref, opts);
    } catch (pullErr) {
      throw new BuildError('ERR_KILN_IMAGE_NOT_FOUND', `image "${ref}" is not in the local store, and pulling it failed: ${(pullErr as Error).message}`, {
        hint: 'import, load or pull it first, or check the registry (--insecure-registry, --registry-auth)',
        cause: pullErr,
      });
    }
  }
}

/** Make the image's layers known to the metadata store (diffId ↔ blob), so snapshots can be unpacked from them. */
export function registerLayers(s: State, manifest: Manifest, config: ImageConfig): void {
  layerCache(s).register(manifest.layers, config.rootfs?.diff_ids ?? []);
}

/**
 * Unpack the image's layers into snapshots now, as it arrives (import, load, pull, a FROM that pulls), as containerd
 * and Docker do: a build that uses the image finds them unpacked and pays nothing. Layers already unpacked are skipped.
 */
export async function unpackImage(s: State, config: ImageConfig, signal?: AbortSignal): Promise<void> {
  const t = Date.now();
  const diffIds = config.rootfs?.diff_ids ?? [];
  await layerCache(s).acquireAll(diffIds, signal);
  trace(`unpacked ${diffIds.length} layers: ${Date.now() - t} ms`);
}

/** Write config + manifest blobs; returns the manifest descriptor. */
export async function writeImage(s: Blobs, config: ImageConfig, layers: Descriptor[], annotations?: Record<string, string>): Promise<{ manifest: Descriptor; config: Descriptor }> {
  const cfgBytes = Buffer.from(JSON.stringify(config));
  const cfg = await s.store.write(cfgBytes);
  const manifest: Manifest = {
    schemaVersion: 2,
    mediaType: MediaType.OciManifest,
    config: { mediaType: MediaType.OciConfig, digest: cfg.digest, size: cfg.size },
    layers,
    ...(annotations ? { annotations } : {}),
  };
  const mBytes = Buffer.from(JSON.stringify(manifest));
  const m = await s.store.write(mBytes);
  return { manifest: { mediaType: MediaType.OciManifest, digest: m.digest, size: m.size }, config: manifest.config };
}

/** `kiln import ROOTFS.tar|DIR NAME:TAG`: one-layer image, reproducible (same input → same digest). */
export async function importRootfs(s: State, opts: { source: string; name: string }): Promise<Digest> {
  const { diffId, descriptor } = await layerCache(s).importLayer(opts.source);
  const config: ImageConfig = {
    created: '1970-01-01T00:00:00Z',
    architecture: nodeArch(),
    os: 'linux',
    config: { Env: [`PATH=${DEFAULT_PATH}`] },
    rootfs: { type: 'layers', diff_ids: [diffId] },
    history: [{ created: '1970-01-01T00:00:00Z', created_by: `kiln import ${path.basename(opts.source)}` }],
  };
  const { manifest } = await writeImage(s, config, [descriptor]);
  s.db.images.putImage({ name: normalizeRef(opts.name), manifest: manifest.digest, created: Date.now() });
  await unpackImage(s, config);
  return manifest.digest;
}

export function canonical(o: unknown): string {
  return canonicalJson(o);
}
