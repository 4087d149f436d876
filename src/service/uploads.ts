import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, existsSync, promises as fsp } from 'node:fs';
import path from 'node:path';
import { PassThrough, type Readable } from 'node:stream';
import { BuildError } from '../errors/index.js';
import { MediaType, sha256, type Descriptor, type Digest, type Index, type Manifest } from '../oci/index.js';
import { bufferSource, eachLimit, fileSource, type RegistryClient, type RegistryRef } from '../registry/index.js';

const DIGEST = /^sha256:[a-f0-9]{64}$/;

/** Verified local copies of blobs, and how many of them had to be downloaded first. */
export interface LocalBlobs {
  /** digest → file holding its bytes (only the digests the store holds) */
  paths: Map<string, string>;
  /** blobs (and their bytes) downloaded into the local cache for this call; 0 for the local-folder store */
  fetched: number;
  fetchedBytes: number;
}

/**
 * A team's content-addressed store of uploaded context files (`POST /v1/uploads/missing`, `PUT /v1/uploads/{digest}`).
 * A blob is stored only after its bytes were verified against the digest: a mismatch or a dropped stream stores
 * nothing. Two mechanisms: {@link LocalUploadStore} (a folder, one machine) and {@link RegistryUploadStore} (blobs in
 * an OCI registry repository, read by every worker through a local cache).
 */
export interface UploadStore {
  /** The digests of `digests` the store does not hold, each once. */
  missing(digests: Iterable<string>, o?: { signal?: AbortSignal }): Promise<string[]>;
  has(digest: string): Promise<boolean>;
  /** Size in bytes of a held blob, undefined when it is not held. */
  size(digest: string): Promise<number | undefined>;
  /** Stream `body` in, verified against `digest` and at most `maxBytes`; returns the bytes received. */
  put(digest: string, body: Readable, maxBytes: number): Promise<number>;
  /** The blob's bytes (from a verified local copy). */
  open(digest: string): Promise<Readable>;
  /** Local files of `digests`, downloading (verified) only those the local cache lacks; digests not held are left out. */
  local(digests: Iterable<string>, o?: { signal?: AbortSignal }): Promise<LocalBlobs>;
  /** Keep a build's blobs referenced until it has run (the registry's GC keeps referenced blobs; a folder keeps all). */
  retain(buildId: string, digests: Iterable<string>, o?: { signal?: AbortSignal }): Promise<void>;
}

function checkDigest(digest: string): Digest {
  if (!DIGEST.test(digest)) throw new BuildError('ERR_KILN_ARGUMENT', `"${digest}" is not a sha256 digest`);
  return digest as Digest;
}

/**
 * The folder store (`TEAM_ROOT/uploads/sha256/<hex>`). A blob appears only after its bytes were streamed to a temp
 * file, fsynced and verified against the digest; a mismatch deletes the temp file and stores nothing. A dropped upload
 * leaves only a temp file, removed at the next start. Also the local cache of {@link RegistryUploadStore}.
 */
export class LocalUploadStore implements UploadStore {
  constructor(readonly dir: string) {}

  /** File of a blob (whether or not it is there). */
  path(digest: string): string {
    return path.join(this.dir, 'sha256', checkDigest(digest).slice(7));
  }

  /** Create the folders and drop temp files a previous process left. */
  async init(): Promise<void> {
    await fsp.mkdir(path.join(this.dir, 'sha256'), { recursive: true });
    await fsp.mkdir(path.join(this.dir, 'ingest'), { recursive: true });
    for (const n of await fsp.readdir(path.join(this.dir, 'ingest'))) await fsp.rm(path.join(this.dir, 'ingest', n), { force: true });
  }

  holds(digest: string): boolean {
    return existsSync(this.path(digest));
  }

  async has(digest: string): Promise<boolean> {
    return this.holds(digest);
  }

  async missing(digests: Iterable<string>): Promise<string[]> {
    return [...new Set(digests)].filter((d) => !this.holds(d));
  }

  async size(digest: string): Promise<number | undefined> {
    return fsp.stat(this.path(digest)).then((s) => s.size, () => undefined);
  }

  async put(digest: string, body: Readable, maxBytes: number): Promise<number> {
    const dest = this.path(digest);
    const tmp = path.join(this.dir, 'ingest', `${digest.slice(7, 23)}-${randomBytes(4).toString('hex')}`);
    const fh = await fsp.open(tmp, 'wx', 0o600);
    const hash = createHash('sha256');
    let bytes = 0;
    try {
      for await (const chunk of body as AsyncIterable<Buffer>) {
        bytes += chunk.length;
        if (bytes > maxBytes) throw new BuildError('ERR_KILN_LIMIT_EXCEEDED', `upload ${digest} is larger than the limit of ${maxBytes} bytes (uploadBytesPerBuild)`);
        hash.update(chunk);
        await fh.write(chunk);
      }
      const got = `sha256:${hash.digest('hex')}`;
      if (got !== digest) throw new BuildError('ERR_KILN_UPLOAD_DIGEST', `uploaded bytes have digest ${got}, not ${digest}`);
      await fh.sync();
      await fh.close();
      await fsp.rename(tmp, dest);
      return bytes;
    } catch (err) {
      await fh.close().catch(() => undefined);
      await fsp.rm(tmp, { force: true });
      throw err;
    }
  }

  async open(digest: string): Promise<Readable> {
    return createReadStream(this.path(digest));
  }

  async local(digests: Iterable<string>): Promise<LocalBlobs> {
    const paths = new Map<string, string>();
    for (const d of new Set(digests)) if (this.holds(d)) paths.set(d, this.path(d));
    return { paths, fetched: 0, fetchedBytes: 0 };
  }

  async retain(): Promise<void> {
    // a folder keeps every blob
  }
}

/** Open (and prepare) the folder store of a team root's `uploads`. */
export async function openLocalUploads(dir: string): Promise<LocalUploadStore> {
  const s = new LocalUploadStore(dir);
  await s.init();
  return s;
}

/** Options of {@link RegistryUploadStore}. */
export interface RegistryUploadsOptions {
  client: RegistryClient;
  /** the team's uploads repository (see {@link teamUploadsRef}); a tag, if any, is ignored */
  ref: RegistryRef;
  /** the local cache, e.g. `WORKER_ROOT/teams/<id>/uploads` */
  cacheDir: string;
  /** parallel HEADs / downloads (default 8 / 4) */
  concurrency?: number;
  /** keep a received upload in the local cache after pushing it (default true; false for an API-only node) */
  cacheUploads?: boolean;
}

/** `REF/<team-id>/uploads`: the repository of a team's uploads under a registry base reference. */
export function teamUploadsRef(base: RegistryRef, teamId: string): RegistryRef {
  return { host: base.host, repository: `${base.repository}/${teamId}/uploads` };
}

const CONTEXT_ARTIFACT = 'application/vnd.kiln.context.v1';
const EMPTY_CONFIG = Buffer.from('{}');
/** layers per retention manifest (well below the registry's 4 MiB manifest limit) */
const RETAIN_CHUNK = 10_000;

/**
 * Uploads as blobs of a registry repository per team, so a build can run on any worker. `missing` asks the registry
 * (HEAD per blob); `put` verifies the bytes into the local cache first, then uploads the blob (one PUT, or PATCH
 * chunks for large ones), so a mismatch or dropped stream reaches neither; reads download on demand into the local
 * cache, verified by size and sha256, and a later read of the same blob on this machine downloads nothing.
 */
export class RegistryUploadStore implements UploadStore {
  private readonly cache: LocalUploadStore;
  private readonly client: RegistryClient;
  private readonly host: string;
  private readonly repository: string;
  private readonly concurrency: number;
  private readonly cacheUploads: boolean;
  /** sizes learned from the registry (a digest's size never changes) */
  private readonly sizes = new Map<string, number>();

  constructor(o: RegistryUploadsOptions) {
    this.cache = new LocalUploadStore(o.cacheDir);
    this.client = o.client;
    this.host = o.ref.host;
    this.repository = o.ref.repository;
    this.concurrency = o.concurrency ?? 8;
    this.cacheUploads = o.cacheUploads ?? true;
  }

  /** `host/repository` of the blobs. */
  get location(): string {
    return `${this.host}/${this.repository}`;
  }

  async init(): Promise<void> {
    await this.cache.init();
  }

  async size(digest: string, o: { signal?: AbortSignal } = {}): Promise<number | undefined> {
    const size = await this.client.blobSize({ host: this.host, repository: this.repository, digest: checkDigest(digest), ...sig(o) });
    if (size !== undefined) this.sizes.set(digest, size);
    return size;
  }

  async has(digest: string): Promise<boolean> {
    return (await this.size(digest)) !== undefined;
  }

  async missing(digests: Iterable<string>, o: { signal?: AbortSignal } = {}): Promise<string[]> {
    const unique = [...new Set(digests)];
    for (const d of unique) checkDigest(d);
    const absent = new Set<string>();
    await eachLimit(unique, this.concurrency, async (d) => {
      if ((await this.size(d, o)) === undefined) absent.add(d);
    });
    return unique.filter((d) => absent.has(d));
  }

  async put(digest: string, body: Readable, maxBytes: number): Promise<number> {
    const size = await this.cache.put(digest, body, maxBytes);
    try {
      await this.client.pushBlob({
        host: this.host, repository: this.repository, descriptor: { mediaType: 'application/octet-stream', digest: digest as Digest, size },
        source: fileSource(this.cache.path(digest), size),
      });
    } finally {
      if (!this.cacheUploads) await fsp.rm(this.cache.path(digest), { force: true });
    }
    this.sizes.set(digest, size);
    return size;
  }

  async open(digest: string): Promise<Readable> {
    const { paths } = await this.local([digest]);
    const file = paths.get(digest);
    if (!file) throw new BuildError('ERR_KILN_SERVICE_REQUEST', `blob ${digest} is not in ${this.location}`);
    return createReadStream(file);
  }

  async local(digests: Iterable<string>, o: { signal?: AbortSignal } = {}): Promise<LocalBlobs> {
    const paths = new Map<string, string>();
    const todo: string[] = [];
    for (const d of new Set(digests)) {
      if (this.cache.holds(d)) paths.set(d, this.cache.path(d));
      else todo.push(d);
    }
    let fetched = 0;
    let fetchedBytes = 0;
    await eachLimit(todo, Math.min(this.concurrency, 4), async (d) => {
      const size = this.sizes.get(d) ?? (await this.size(d, o));
      if (size === undefined) return;
      await this.download(d, size, o);
      paths.set(d, this.cache.path(d));
      fetched++;
      fetchedBytes += size;
    });
    return { paths, fetched, fetchedBytes };
  }

  /** Download one blob into the cache: the client checks size and digest on the way, the cache's put again. */
  private async download(digest: string, size: number, o: { signal?: AbortSignal }): Promise<void> {
    const relay = new PassThrough();
    const into = this.cache.put(digest, relay, size);
    try {
      await this.client.fetchBlob({ host: this.host, repository: this.repository, descriptor: { mediaType: 'application/octet-stream', digest: digest as Digest, size }, sink: relay, ...sig(o) });
    } catch (err) {
      relay.destroy(err as Error);
      await into.catch(() => undefined);
      throw err;
    }
    await into;
  }

  /**
   * Reference the blobs from a manifest tagged `upload-<buildId>` (an index of several manifests for a very large
   * context), so the registry's garbage collection keeps them while the build waits for a worker.
   */
  async retain(buildId: string, digests: Iterable<string>, o: { signal?: AbortSignal } = {}): Promise<void> {
    const unique = [...new Set(digests)];
    if (unique.length === 0) return;
    const layers: Descriptor[] = [];
    await eachLimit(unique, this.concurrency, async (d) => {
      const size = this.sizes.get(d) ?? (await this.size(d, o));
      if (size === undefined) throw new BuildError('ERR_KILN_SERVICE_REQUEST', `context blob ${d} is not in ${this.location}`, { hint: 'upload every digest POST /v1/uploads/missing names, then start the build' });
      layers.push({ mediaType: 'application/octet-stream', digest: d as Digest, size });
    });
    layers.sort((a, b) => (a.digest < b.digest ? -1 : 1));
    const config: Descriptor = { mediaType: 'application/vnd.oci.empty.v1+json', digest: sha256(EMPTY_CONFIG), size: EMPTY_CONFIG.length };
    await this.client.pushBlob({ host: this.host, repository: this.repository, descriptor: config, source: bufferSource(EMPTY_CONFIG), ...sig(o) });
    const tag = `upload-${buildId}`;
    const chunks: Descriptor[][] = [];
    for (let i = 0; i < layers.length || chunks.length === 0; i += RETAIN_CHUNK) chunks.push(layers.slice(i, i + RETAIN_CHUNK));
    const manifests: Descriptor[] = [];
    for (const chunk of chunks) {
      const manifest: Manifest & { artifactType: string } = { schemaVersion: 2, mediaType: MediaType.OciManifest, artifactType: CONTEXT_ARTIFACT, config, layers: chunk };
      const data = Buffer.from(JSON.stringify(manifest));
      const reference = chunks.length === 1 ? tag : sha256(data);
      const digest = await this.client.putManifest({ host: this.host, repository: this.repository, reference, data, mediaType: MediaType.OciManifest, ...sig(o) });
      manifests.push({ mediaType: MediaType.OciManifest, digest, size: data.length });
    }
    if (chunks.length === 1) return;
    const index: Index & { artifactType: string } = { schemaVersion: 2, mediaType: MediaType.OciIndex, artifactType: CONTEXT_ARTIFACT, manifests };
    await this.client.putManifest({ host: this.host, repository: this.repository, reference: tag, data: Buffer.from(JSON.stringify(index)), mediaType: MediaType.OciIndex, ...sig(o) });
  }
}

/** Open (and prepare the local cache of) a team's registry upload store. */
export async function openRegistryUploads(o: RegistryUploadsOptions): Promise<RegistryUploadStore> {
  const s = new RegistryUploadStore(o);
  await s.init();
  return s;
}

function sig(o: { signal?: AbortSignal }): { signal?: AbortSignal } {
  return o.signal ? { signal: o.signal } : {};
}
