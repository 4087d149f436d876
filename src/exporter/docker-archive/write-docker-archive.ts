import { BuildError } from '../../errors/index.js';
import { digestHex, familiarRepository, formatFamiliarRef } from '../../oci/index.js';
import { createTarSink } from '../archive/sink.js';
import { blobPath, indexEntries, writeLayout } from '../layout.js';
import { planExport, type PlannedImage } from '../plan.js';
import type { WriteDockerArchiveOptions } from '../types.js';

/** One entry of a docker-save `manifest.json`. @internal */
export interface DockerManifestEntry {
  Config: string;
  RepoTags: string[];
  Layers: string[];
}

/**
 * Write a `docker load`-able tar, laid out as Docker 25+ `docker save` does: `manifest.json` and `repositories` point
 * into `blobs/sha256/`, and the same tar is also an OCI layout (`oci-layout`, `index.json`), so OCI tools read it too.
 * Layers are stored as they are (gzip layers stay compressed). Each image must be a single-platform manifest.
 *
 * @example
 * await writeDockerArchive({ store, images: [{ manifest, names: ['app:1.0'] }], dest: 'app-docker.tar' });
 * // docker load -i app-docker.tar
 */
export async function writeDockerArchive(opts: WriteDockerArchiveOptions): Promise<void> {
  const plan = await planExport(opts);
  const entries = dockerManifest(plan.images);
  const files: Array<[string, Buffer]> = [['manifest.json', Buffer.from(JSON.stringify(entries))]];
  const repos = repositories(plan.images);
  if (repos !== undefined) files.push(['repositories', Buffer.from(JSON.stringify(repos))]);
  await writeLayout({
    openSink: () => createTarSink({ dest: opts.dest, mtime: new Date((opts.sourceDateEpoch ?? 0) * 1000) }),
    dest: typeof opts.dest === 'string' ? opts.dest : 'the output stream',
    store: opts.store,
    plan,
    index: indexEntries(plan.images),
    files,
    ...(opts.signal ? { signal: opts.signal } : {}),
  });
}

/** `manifest.json`: one entry per manifest (images sharing a manifest share an entry), tags in the short form. */
function dockerManifest(images: PlannedImage[]): DockerManifestEntry[] {
  const byDigest = new Map<string, DockerManifestEntry>();
  for (const image of images) {
    const manifest = image.manifest;
    if (!manifest || !image.config) {
      throw new BuildError('ERR_KILN_NOT_SUPPORTED', `image ${image.descriptor.digest} is a multi-platform index; a docker archive holds single-platform images`, {
        hint: 'export one platform, or use the OCI layout format',
      });
    }
    const diffIds = image.config.rootfs?.diff_ids;
    if (!Array.isArray(diffIds) || diffIds.length !== manifest.layers.length) {
      throw new BuildError('ERR_KILN_IMAGE_INVALID', `image ${image.descriptor.digest} has ${manifest.layers.length} layers but its config lists ${Array.isArray(diffIds) ? diffIds.length : 'no'} diff_ids`);
    }
    let entry = byDigest.get(image.descriptor.digest);
    if (!entry) {
      entry = { Config: blobPath(manifest.config), RepoTags: [], Layers: manifest.layers.map(blobPath) };
      byDigest.set(image.descriptor.digest, entry);
    }
    for (const ref of image.refs) {
      if (ref.tag === undefined) continue; // a digest-only name cannot be a RepoTag
      const tag = formatFamiliarRef({ ...ref, digest: undefined });
      if (!entry.RepoTags.includes(tag)) entry.RepoTags.push(tag);
    }
  }
  return [...byDigest.values()];
}

/** The legacy `repositories` file: repository → tag → hex digest of the top layer; undefined when empty. */
function repositories(images: PlannedImage[]): Record<string, Record<string, string>> | undefined {
  const repos = new Map<string, Map<string, string>>();
  for (const image of images) {
    const top = image.manifest?.layers.at(-1);
    if (!top) continue;
    for (const ref of image.refs) {
      if (ref.tag === undefined) continue;
      const repo = familiarRepository(ref);
      if (!repos.has(repo)) repos.set(repo, new Map());
      repos.get(repo)!.set(ref.tag, digestHex(top.digest));
    }
  }
  if (repos.size === 0) return undefined;
  const out: Record<string, Record<string, string>> = {};
  for (const repo of [...repos.keys()].sort()) {
    const tags = repos.get(repo)!;
    out[repo] = Object.fromEntries([...tags.keys()].sort().map((t) => [t, tags.get(t)!]));
  }
  return out;
}
