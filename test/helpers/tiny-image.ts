import { gzipSync } from 'node:zlib';
import tar from 'tar-stream';
import { MediaType, sha256, type Descriptor, type Digest, type ImageConfig, type Index, type Manifest } from '../../src/oci/index.js';
import type { ContentStore } from '../../src/store/index.js';

/** A tiny image written into a store by tests. @internal */
export interface TinyImage {
  manifest: Digest;
  manifestSize: number;
  config: Digest;
  layers: Descriptor[];
  diffIds: Digest[];
}

/** A tar entry for {@link makeTarEntries}. @internal */
export interface TarInput {
  name: string;
  type?: 'file' | 'directory' | 'symlink' | 'link';
  linkname?: string;
  body?: string | Buffer;
}

/** A tar (bytes) holding `files` (name → content) with fixed metadata. @internal */
export function makeTar(files: Record<string, string | Buffer>): Promise<Buffer> {
  return makeTarEntries(Object.entries(files).map(([name, body]) => ({ name, body })));
}

/** A tar (bytes) holding the entries as given, unchecked (tests use it for hostile archives too). @internal */
export async function makeTarEntries(entries: TarInput[]): Promise<Buffer> {
  const pack = tar.pack();
  const parts: Buffer[] = [];
  const collected = (async () => {
    for await (const c of pack) parts.push(c as Buffer);
  })();
  for (const e of entries) {
    const type = e.type ?? 'file';
    await new Promise<void>((resolve, reject) => {
      const cb = (err?: Error | null): void => (err ? reject(err) : resolve());
      const header = { name: e.name, type, mode: type === 'directory' ? 0o755 : 0o644, mtime: new Date(0), ...(e.linkname ? { linkname: e.linkname } : {}) };
      if (type === 'file') pack.entry(header, e.body ?? '', cb);
      else pack.entry(header, cb).end(Buffer.alloc(0));
    });
  }
  pack.finalize();
  await collected;
  return Buffer.concat(parts);
}

/**
 * Write an image with a gzip layer and an uncompressed layer (so both media types are covered), a config and an
 * OCI manifest. `tag` changes the content, to make distinct images.
 * @internal
 */
export async function makeTinyImage(store: ContentStore, opts: { tag?: string; architecture?: string } = {}): Promise<TinyImage> {
  const tag = opts.tag ?? 'one';
  const tar1 = await makeTar({ 'hello.txt': `hello ${tag}\n`, 'etc/motd': 'kiln\n' });
  const tar2 = await makeTar({ 'data/big.bin': Buffer.alloc(200_000, tag) });
  const gz1 = gzipSync(tar1);
  const l1 = await store.write(gz1);
  const l2 = await store.write(tar2);
  const diffIds = [sha256(tar1), sha256(tar2)];
  const config: ImageConfig = {
    created: '1970-01-01T00:00:00Z',
    architecture: opts.architecture ?? 'amd64',
    os: 'linux',
    config: { Env: ['PATH=/usr/bin:/bin'], Cmd: ['/bin/sh'], Labels: { tag } },
    rootfs: { type: 'layers', diff_ids: diffIds },
    history: [{ created_by: 'ADD hello.txt' }, { created_by: 'ADD big.bin' }],
  };
  const cfg = await store.write(JSON.stringify(config));
  const layers: Descriptor[] = [
    { mediaType: MediaType.OciLayerGzip, digest: l1.digest, size: l1.size },
    { mediaType: MediaType.OciLayer, digest: l2.digest, size: l2.size },
  ];
  const manifest: Manifest = {
    schemaVersion: 2,
    mediaType: MediaType.OciManifest,
    config: { mediaType: MediaType.OciConfig, digest: cfg.digest, size: cfg.size },
    layers,
  };
  const m = await store.write(JSON.stringify(manifest));
  return { manifest: m.digest, manifestSize: m.size, config: cfg.digest, layers, diffIds };
}

/** Write an index over `images` for amd64 and arm64. @internal */
export async function makeIndex(store: ContentStore, images: TinyImage[]): Promise<Digest> {
  const index: Index = {
    schemaVersion: 2,
    mediaType: MediaType.OciIndex,
    manifests: images.map((img, i) => ({
      mediaType: MediaType.OciManifest, digest: img.manifest, size: img.manifestSize,
      platform: { architecture: i === 0 ? 'amd64' : 'arm64', os: 'linux' },
    })),
  };
  return (await store.write(JSON.stringify(index))).digest;
}

/** Read a tar's entries into memory (name → header and body), in order. @internal */
export async function readTar(data: Buffer): Promise<Array<{ header: tar.Header; body: Buffer }>> {
  const ex = tar.extract();
  const out: Array<{ header: tar.Header; body: Buffer }> = [];
  const done = (async () => {
    for await (const e of ex) {
      const parts: Buffer[] = [];
      for await (const c of e) parts.push(c as Buffer);
      out.push({ header: e.header, body: Buffer.concat(parts) });
    }
  })();
  ex.end(data);
  await done;
  return out;
}
