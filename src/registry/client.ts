import { createHash } from 'node:crypto';
import { Readable, Transform, type Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { BuildError, isBuildError, type ErrorCode } from '../errors/index.js';
import { MediaType, sha256, type Descriptor, type Digest } from '../oci/index.js';
import { basicHeader, normalizeAuthKey, parseChallenge, readDockerAuths, type AuthChallenge, type Credentials } from './auth.js';
import { registryError } from './errors.js';
import { isLoopbackHost, manifestReference, type RegistryRef } from './ref.js';
import type { BlobSource, PushOutcome, RegistryOptions } from './types.js';

/** Media types a manifest GET asks for, most wanted first. */
export const MANIFEST_ACCEPT = [MediaType.OciIndex, MediaType.OciManifest, MediaType.DockerManifestList, MediaType.DockerManifest];
const MAX_MANIFEST = 4 << 20;
const DEFAULT_CHUNK = 8 << 20;

interface RequestOptions {
  host: string;
  method: string;
  /** path below `/v2/` or an absolute URL (upload locations) */
  url: string;
  headers?: Record<string, string>;
  body?: Buffer;
  /** token scopes this request needs, e.g. `repository:app:pull` */
  scopes: string[];
  signal?: AbortSignal | undefined;
  /** statuses that are not errors (default 2xx) */
  ok?: number[];
  /** what the request is for, in error messages */
  what: string;
}

/**
 * A client of the OCI distribution API for any number of registries. It remembers bearer tokens by host and scope,
 * and which repositories hold which blobs (so a push can mount instead of upload). Plain HTTP is used for loopback
 * hosts and `insecureHosts`; credentials come from `credentials`, then docker's config.json.
 *
 * @example
 * const client = new RegistryClient({ insecureHosts: ['registry.lan:5000'] });
 * const { data, descriptor } = await client.getManifest(parseRegistryRef('registry.lan:5000/app:1'));
 */
export class RegistryClient {
  private readonly opts: RegistryOptions;
  private readonly doFetch: typeof fetch;
  private readonly creds = new Map<string, Credentials>();
  private readonly challenges = new Map<string, AuthChallenge>();
  private readonly tokens = new Map<string, string>();
  /** `host digest` → repositories known to hold the blob */
  private readonly blobHomes = new Map<string, Set<string>>();

  constructor(opts: RegistryOptions = {}) {
    this.opts = opts;
    this.doFetch = opts.fetch ?? fetch;
    if (opts.dockerConfig !== false) for (const [h, c] of readDockerAuths(opts.dockerConfig)) this.creds.set(h, c);
    for (const [h, c] of Object.entries(opts.credentials ?? {})) this.creds.set(normalizeAuthKey(h), c);
  }

  /** Bytes per chunk of a chunked upload. */
  get chunkSize(): number {
    return this.opts.chunkSize ?? DEFAULT_CHUNK;
  }

  /** `http://host/v2/` or `https://host/v2/` (docker.io is served by registry-1.docker.io). */
  baseUrl(host: string): string {
    const insecure = isLoopbackHost(host) || (this.opts.insecureHosts ?? []).some((h) => h.toLowerCase() === host.toLowerCase());
    const name = host === 'docker.io' ? 'registry-1.docker.io' : host;
    return `${insecure ? 'http' : 'https'}://${name}/v2/`;
  }

  /** Remember that `repository` on `host` holds `digest` (a later push elsewhere on the host may mount it). */
  noteBlob(host: string, repository: string, digest: Digest): void {
    const k = `${host} ${digest}`;
    let s = this.blobHomes.get(k);
    if (!s) this.blobHomes.set(k, (s = new Set()));
    s.add(repository);
  }

  /** GET a manifest or index by tag or digest; checks the bytes against the digest asked for (or the one the registry names). */
  async getManifest(ref: RegistryRef, o: { signal?: AbortSignal } = {}): Promise<{ descriptor: Descriptor; data: Buffer }> {
    const reference = manifestReference(ref);
    const res = await this.request({
      host: ref.host, method: 'GET', url: `${ref.repository}/manifests/${reference}`, headers: { accept: MANIFEST_ACCEPT.join(', ') },
      scopes: [`repository:${ref.repository}:pull`], signal: o.signal, what: `manifest ${ref.repository}:${reference}`,
    });
    const data = await readLimited(res, MAX_MANIFEST, `manifest ${ref.repository}:${reference}`);
    const digest = sha256(data);
    const expected = (ref.digest ?? res.headers.get('docker-content-digest') ?? digest) as Digest;
    if (expected !== digest) {
      throw registryError('ERR_KILN_REGISTRY_DIGEST', `manifest ${ref.host}/${ref.repository}:${reference} hashes to ${digest}, not ${expected}`);
    }
    const mediaType = manifestMediaType(data, res.headers.get('content-type'));
    return { descriptor: { mediaType, digest, size: data.length }, data };
  }

  /** HEAD a manifest: its descriptor, or undefined when the registry does not have it. */
  async headManifest(ref: RegistryRef, o: { signal?: AbortSignal } = {}): Promise<Descriptor | undefined> {
    const reference = manifestReference(ref);
    const res = await this.request({
      host: ref.host, method: 'HEAD', url: `${ref.repository}/manifests/${reference}`, headers: { accept: MANIFEST_ACCEPT.join(', ') },
      scopes: [`repository:${ref.repository}:pull`], signal: o.signal, ok: [200, 404], what: `manifest ${ref.repository}:${reference}`,
    });
    if (res.status === 404) return undefined;
    const digest = res.headers.get('docker-content-digest') as Digest | null;
    if (!digest) return undefined;
    return { mediaType: res.headers.get('content-type') ?? MediaType.OciManifest, digest, size: Number(res.headers.get('content-length') ?? 0) };
  }

  /** PUT a manifest under `reference` (a tag, or its digest). Returns its digest. */
  async putManifest(o: { host: string; repository: string; reference: string; data: Buffer; mediaType: string; signal?: AbortSignal }): Promise<Digest> {
    const digest = sha256(o.data);
    const res = await this.request({
      host: o.host, method: 'PUT', url: `${o.repository}/manifests/${o.reference}`, headers: { 'content-type': o.mediaType }, body: o.data,
      scopes: [`repository:${o.repository}:pull,push`], signal: o.signal, what: `manifest ${o.repository}:${o.reference}`,
    });
    await res.arrayBuffer().catch(() => undefined);
    const said = res.headers.get('docker-content-digest');
    if (said && said !== digest) throw registryError('ERR_KILN_REGISTRY_DIGEST', `the registry stored manifest ${o.repository}:${o.reference} as ${said}, kiln sent ${digest}`);
    return digest;
  }

  /** Size of the blob in the repository, or undefined when it is not there (a HEAD request). */
  async blobSize(o: { host: string; repository: string; digest: Digest; signal?: AbortSignal; push?: boolean }): Promise<number | undefined> {
    const res = await this.request({
      host: o.host, method: 'HEAD', url: `${o.repository}/blobs/${o.digest}`,
      scopes: [`repository:${o.repository}:${o.push ? 'pull,push' : 'pull'}`], signal: o.signal, ok: [200, 404], what: `blob ${o.digest}`,
    });
    if (res.status === 404) return undefined;
    this.noteBlob(o.host, o.repository, o.digest);
    return Number(res.headers.get('content-length') ?? -1);
  }

  /**
   * Stream a blob into `sink`, hashing it on the way: a body whose digest or size differs from the descriptor fails
   * with ERR_KILN_REGISTRY_DIGEST (the sink should then be discarded).
   */
  async fetchBlob(o: { host: string; repository: string; descriptor: Descriptor; sink: Writable; signal?: AbortSignal }): Promise<void> {
    const d = o.descriptor;
    const res = await this.request({
      host: o.host, method: 'GET', url: `${o.repository}/blobs/${d.digest}`, scopes: [`repository:${o.repository}:pull`], signal: o.signal, what: `blob ${d.digest}`,
    });
    if (!res.body) throw registryError('ERR_KILN_REGISTRY', `blob ${d.digest} of ${o.host}/${o.repository} came without a body`);
    const hash = createHash('sha256');
    let size = 0;
    const check = new Transform({
      transform(chunk: Buffer, _e, cb) {
        size += chunk.length;
        if (size > d.size) {
          cb(registryError('ERR_KILN_REGISTRY_DIGEST', `blob ${d.digest} from ${o.host}/${o.repository} is longer than its ${d.size} bytes`));
          return;
        }
        hash.update(chunk);
        cb(null, chunk);
      },
      flush(cb) {
        const got = `sha256:${hash.digest('hex')}`;
        if (size !== d.size || got !== d.digest) {
          cb(registryError('ERR_KILN_REGISTRY_DIGEST', `blob ${d.digest} from ${o.host}/${o.repository} is corrupt: ${size} bytes hashing to ${got}`));
        } else cb();
      },
    });
    try {
      await pipeline(Readable.fromWeb(res.body as import('node:stream/web').ReadableStream), check, o.sink, ...(o.signal ? [{ signal: o.signal }] : []));
    } catch (err) {
      if (isBuildError(err) || (err as Error).name === 'AbortError') throw err;
      throw registryError('ERR_KILN_REGISTRY', `reading blob ${d.digest} from ${o.host}/${o.repository} failed: ${(err as Error).message}`, { cause: err });
    }
    this.noteBlob(o.host, o.repository, d.digest);
  }

  /**
   * Make the blob present in the repository: nothing when it already is (HEAD), a cross-repository mount when this
   * client saw it in another repository of the host, else an upload (one PUT for small blobs, PATCH chunks for large
   * ones, resuming from the offset the registry reports when a chunk fails).
   */
  async pushBlob(o: { host: string; repository: string; descriptor: Descriptor; source: BlobSource; mountFrom?: string[]; signal?: AbortSignal }): Promise<PushOutcome> {
    const d = o.descriptor;
    if ((await this.blobSize({ host: o.host, repository: o.repository, digest: d.digest, signal: o.signal, push: true })) !== undefined) return 'exists';
    const homes = [...(o.mountFrom ?? []), ...(this.blobHomes.get(`${o.host} ${d.digest}`) ?? [])].filter((r) => r !== o.repository);
    let location: string | undefined;
    for (const from of new Set(homes)) {
      const res = await this.request({
        host: o.host, method: 'POST', url: `${o.repository}/blobs/uploads/?mount=${encodeURIComponent(d.digest)}&from=${encodeURIComponent(from)}`,
        scopes: [`repository:${o.repository}:pull,push`, `repository:${from}:pull`], signal: o.signal, ok: [201, 202], what: `mount of blob ${d.digest}`,
      });
      await res.arrayBuffer().catch(() => undefined);
      if (res.status === 201) {
        this.noteBlob(o.host, o.repository, d.digest);
        return 'mounted';
      }
      location = this.location(o.host, res);
      break;
    }
    if (!location) {
      const res = await this.request({
        host: o.host, method: 'POST', url: `${o.repository}/blobs/uploads/`, scopes: [`repository:${o.repository}:pull,push`],
        signal: o.signal, ok: [202], what: `upload of blob ${d.digest}`,
      });
      await res.arrayBuffer().catch(() => undefined);
      location = this.location(o.host, res);
    }
    if (d.size <= this.chunkSize) {
      await this.finishUpload({ ...o, location, body: await o.source.read(0, d.size) });
    } else {
      location = await this.uploadChunks({ ...o, location });
      await this.finishUpload({ ...o, location, body: Buffer.alloc(0) });
    }
    this.noteBlob(o.host, o.repository, d.digest);
    return 'uploaded';
  }

  private async uploadChunks(o: { host: string; repository: string; descriptor: Descriptor; source: BlobSource; location: string; signal?: AbortSignal }): Promise<string> {
    let location = o.location;
    let offset = 0;
    let retries = 0;
    const scopes = [`repository:${o.repository}:pull,push`];
    while (offset < o.descriptor.size) {
      const end = Math.min(offset + this.chunkSize, o.descriptor.size);
      const body = await o.source.read(offset, end);
      try {
        const res = await this.request({
          host: o.host, method: 'PATCH', url: location, body, scopes, signal: o.signal, ok: [202], what: `upload of blob ${o.descriptor.digest}`,
          headers: { 'content-type': 'application/octet-stream', 'content-range': `${offset}-${end - 1}` },
        });
        await res.arrayBuffer().catch(() => undefined);
        location = this.location(o.host, res);
        offset = end;
      } catch (err) {
        if (o.signal?.aborted || retries >= 3 || (isBuildError(err) && err.code === 'ERR_KILN_REGISTRY_AUTH')) throw err;
        retries++;
        // resumable upload: ask the registry how much it has and go on from there
        const st = await this.request({ host: o.host, method: 'GET', url: location, scopes, signal: o.signal, ok: [204], what: `upload status of blob ${o.descriptor.digest}` });
        const range = /^(?:bytes=)?0-(\d+)$/.exec(st.headers.get('range') ?? '');
        offset = range ? Number(range[1]) + 1 : 0;
        location = this.location(o.host, st);
      }
    }
    return location;
  }

  private async finishUpload(o: { host: string; repository: string; descriptor: Descriptor; location: string; body: Buffer; signal?: AbortSignal }): Promise<void> {
    const u = new URL(o.location);
    u.searchParams.set('digest', o.descriptor.digest);
    const res = await this.request({
      host: o.host, method: 'PUT', url: u.toString(), body: o.body, headers: { 'content-type': 'application/octet-stream' },
      scopes: [`repository:${o.repository}:pull,push`], signal: o.signal, ok: [201, 204], what: `upload of blob ${o.descriptor.digest}`,
    });
    await res.arrayBuffer().catch(() => undefined);
  }

  private location(host: string, res: Response): string {
    const loc = res.headers.get('location');
    if (!loc) throw registryError('ERR_KILN_REGISTRY', `${host} answered an upload without a Location header`);
    return new URL(loc, this.baseUrl(host)).toString();
  }

  /** One request with authentication: cached token or basic credentials first, then the challenge flow on 401. */
  private async request(o: RequestOptions): Promise<Response> {
    const url = /^https?:\/\//.test(o.url) ? o.url : `${this.baseUrl(o.host)}${o.url}`;
    let auth = await this.authHeader(o.host, o.scopes, false, o.signal);
    for (let attempt = 0; ; attempt++) {
      const headers: Record<string, string> = { ...(o.headers ?? {}), ...(auth ? { authorization: auth } : {}) };
      if (o.body) headers['content-length'] = String(o.body.length);
      let res: Response;
      try {
        res = await this.doFetch(url, { method: o.method, headers, ...(o.body ? { body: o.body } : {}), redirect: 'follow', ...(o.signal ? { signal: o.signal } : {}) });
      } catch (err) {
        if ((err as Error).name === 'AbortError' || o.signal?.aborted) throw o.signal?.reason ?? err;
        const cause = (err as { cause?: { message?: string; code?: string } }).cause;
        throw registryError('ERR_KILN_REGISTRY', `cannot reach ${url} (${o.what}): ${cause?.code ?? cause?.message ?? (err as Error).message}`, {
          cause: err,
          ...(url.startsWith('https:') ? { hint: 'is the registry up? for a plain-HTTP registry pass --insecure-registry HOST' } : {}),
        });
      }
      if (res.status === 401 && attempt === 0) {
        await res.arrayBuffer().catch(() => undefined);
        const ch = parseChallenge(res.headers.get('www-authenticate'));
        if (!ch) throw await httpError(res, url, o.what, 'ERR_KILN_REGISTRY_AUTH');
        this.challenges.set(o.host, ch);
        this.tokens.delete(tokenKey(o.host, o.scopes));
        auth = await this.authHeader(o.host, o.scopes, true, o.signal);
        if (!auth) throw await httpError(res, url, o.what, 'ERR_KILN_REGISTRY_AUTH');
        continue;
      }
      if ((o.ok ?? []).includes(res.status) || (!o.ok && res.ok)) return res;
      throw await httpError(res, url, o.what);
    }
  }

  /** The Authorization header for a request, fetching a bearer token when the host asked for one. */
  private async authHeader(host: string, scopes: string[], fresh: boolean, signal: AbortSignal | undefined): Promise<string | undefined> {
    const ch = this.challenges.get(host);
    const creds = this.creds.get(normalizeAuthKey(host));
    if (!ch) return undefined;
    if (ch.scheme === 'basic') return basicHeader(creds);
    const key = tokenKey(host, scopes);
    const cached = this.tokens.get(key);
    if (cached && !fresh) return `Bearer ${cached}`;
    if (creds?.registryToken) return `Bearer ${creds.registryToken}`;
    const token = await this.fetchToken(host, ch, scopes, creds, signal);
    this.tokens.set(key, token);
    return `Bearer ${token}`;
  }

  private async fetchToken(host: string, ch: AuthChallenge, scopes: string[], creds: Credentials | undefined, signal: AbortSignal | undefined): Promise<string> {
    const realm = ch.params.realm;
    if (!realm) throw registryError('ERR_KILN_REGISTRY_AUTH', `${host} asked for a bearer token without naming a realm`);
    const u = new URL(realm);
    if (ch.params.service) u.searchParams.set('service', ch.params.service);
    const all = new Set([...scopes, ...(ch.params.scope ? ch.params.scope.split(' ') : [])]);
    for (const s of all) u.searchParams.append('scope', s);
    let res: Response;
    try {
      if (creds?.identityToken) {
        const form = new URLSearchParams({ grant_type: 'refresh_token', refresh_token: creds.identityToken, service: ch.params.service ?? host, scope: [...all].join(' '), client_id: 'kiln' });
        res = await this.doFetch(realm, { method: 'POST', body: form, headers: { 'content-type': 'application/x-www-form-urlencoded' }, ...(signal ? { signal } : {}) });
      } else {
        const basic = basicHeader(creds);
        res = await this.doFetch(u.toString(), { headers: basic ? { authorization: basic } : {}, ...(signal ? { signal } : {}) });
      }
    } catch (err) {
      throw registryError('ERR_KILN_REGISTRY', `cannot reach the token service ${u.origin}${u.pathname} of ${host}: ${(err as Error).message}`, { cause: err });
    }
    if (!res.ok) throw await httpError(res, u.toString(), `a token for ${[...all].join(' ')}`, 'ERR_KILN_REGISTRY_AUTH');
    const body = (await res.json().catch(() => ({}))) as { token?: string; access_token?: string };
    const token = body.token ?? body.access_token;
    if (!token) throw registryError('ERR_KILN_REGISTRY_AUTH', `the token service of ${host} returned no token`);
    return token;
  }
}

function tokenKey(host: string, scopes: string[]): string {
  return `${host} ${[...scopes].sort().join(' ')}`;
}

/** The manifest's own mediaType field, else the Content-Type, else a guess from its shape. */
function manifestMediaType(data: Buffer, contentType: string | null): string {
  try {
    const doc = JSON.parse(data.toString('utf8')) as { mediaType?: unknown; manifests?: unknown };
    if (typeof doc.mediaType === 'string' && doc.mediaType) return doc.mediaType;
    if (contentType && !contentType.startsWith('application/json') && !contentType.startsWith('text/')) return contentType.split(';')[0]!.trim();
    return Array.isArray(doc.manifests) ? MediaType.OciIndex : MediaType.OciManifest;
  } catch (cause) {
    throw registryError('ERR_KILN_REGISTRY', 'the registry returned a manifest that is not JSON', { cause });
  }
}

async function readLimited(res: Response, limit: number, what: string): Promise<Buffer> {
  const len = Number(res.headers.get('content-length') ?? 0);
  if (len > limit) throw registryError('ERR_KILN_REGISTRY', `${what} is ${len} bytes, more than the ${limit} kiln accepts`);
  const buf = Buffer.from(await res.arrayBuffer());
  if (buf.length > limit) throw registryError('ERR_KILN_REGISTRY', `${what} is more than ${limit} bytes`);
  return buf;
}

/** A non-2xx answer as a BuildError, with the registry's own error code and message when it sent them. */
async function httpError(res: Response, url: string, what: string, code?: ErrorCode): Promise<BuildError> {
  let detail = '';
  try {
    const text = await res.text();
    const doc = JSON.parse(text) as { errors?: Array<{ code?: string; message?: string }> };
    detail = (doc.errors ?? []).map((e) => [e.code, e.message].filter(Boolean).join(': ')).join('; ');
  } catch {
    /* no JSON body */
  }
  const c: ErrorCode = code ?? (res.status === 404 ? 'ERR_KILN_REGISTRY_NOT_FOUND' : res.status === 401 || res.status === 403 ? 'ERR_KILN_REGISTRY_AUTH' : 'ERR_KILN_REGISTRY');
  return registryError(c, `${what}: ${res.status} ${res.statusText} from ${url}${detail ? ` (${detail})` : ''}`, { details: { status: res.status } });
}

/** Is this a registry's "not found" (a missing manifest, tag or repository)? */
export function isRegistryNotFound(err: unknown): boolean {
  return isBuildError(err) && err.code === 'ERR_KILN_REGISTRY_NOT_FOUND';
}
