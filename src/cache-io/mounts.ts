import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream, promises as fsp } from 'node:fs';
import path from 'node:path';
import { PassThrough, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip, createGzip } from 'node:zlib';
import tar from 'tar-stream';
import { BuildError } from '../errors/index.js';
import { MediaType, sha256, type Descriptor, type Digest, type Manifest } from '../oci/index.js';
import { bufferSource, fileSource, isRegistryNotFound, type RegistryClient, type RegistryRef } from '../registry/index.js';

/**
 * Cache mounts (`RUN --mount=type=cache`) shared through a registry, per team (the repository) and cache key (the
 * mount's id, plus its seed or owner when it has one): `REPO:mount-<sha256 of key>` is an ordinary OCI manifest
 *
 *   config  application/vnd.kiln.cache.mount.v1+json  { version, id, key, files: [...], packs: [...] }
 *   layers  packs: tar+gzip files whose entries are named by the sha256 of their bytes (`sha256/<hex>`)
 *
 * `files` is the tree: path, type, mode, owner, mtime and (files) the content digest; `packs` say which digests
 * each pack holds. Contents are stored once, however many paths or writers share them.
 *
 * Concurrent writers: a merge, never a corruption. An export reads the current index, overlays its own tree on it
 * (per path, the last writer wins; paths only others have are kept), uploads one new pack with only the contents
 * the registry lacks, and puts a new manifest that references complete, immutable packs only. It then checks the
 * tag: when another writer's manifest replaced its own in between, it merges again on top of that one (a few
 * times). Entries no writer has seen for {@link MOUNT_ENTRY_MAX_AGE_MS} are dropped, which bounds the cache.
 */

export const MOUNT_CONFIG_MEDIA_TYPE = 'application/vnd.kiln.cache.mount.v1+json';
const PACK_ANNOTATION = 'dev.kiln.cache.mount.pack';
/** an entry no export has seen for this long is left out of the next index */
export const MOUNT_ENTRY_MAX_AGE_MS = 14 * 24 * 3600_000;
const MERGE_ROUNDS = 3;

/** One entry of a mount's tree. */
export interface MountFile {
  path: string;
  type: 'file' | 'dir' | 'symlink';
  mode: number;
  uid: number;
  gid: number;
  /** seconds */
  mtime: number;
  size?: number;
  digest?: Digest;
  link?: string;
  /** when an export last saw it (ms) */
  seen: number;
}

/** The mount's index (the manifest's config). */
export interface MountIndex {
  version: 1;
  id: string;
  key: string;
  files: MountFile[];
  packs: Array<{ blob: Digest; size: number; contents: string[] }>;
}

/** Tag of a cache mount key's manifest. */
export function mountTag(key: string): string {
  return `mount-${sha256(key).slice(7)}`;
}

/** Where a cache mount travels: the team's repository and the mount's storage key. */
export interface MountTarget {
  client: RegistryClient;
  /** the team's repository (host and repository; a tag is ignored) */
  repo: RegistryRef;
  key: string;
  signal?: AbortSignal;
}

/** What an export or import of one mount moved. */
export interface MountTransferReport {
  key: string;
  /** entries in the index after the export / entries created by the import */
  files: number;
  /** content bytes uploaded or downloaded (uncompressed) */
  bytes: number;
  /** pack blobs uploaded or downloaded */
  packs: number;
}

// ---------------------------------------------------------------- export

/** Options of {@link exportMount}. */
export interface ExportMountOptions extends MountTarget {
  id: string;
  /** the mount's data directory */
  dir: string;
  /** a scratch directory on any filesystem (the pack is written there, then uploaded) */
  tmpDir: string;
  /** the mount's state file of {@link importMount}: an index this export leaves complete here is noted in it */
  stateFile?: string;
  now?: number;
}

/**
 * Snapshot a cache mount into the shared cache: merge its tree into the registry's index and upload only the
 * contents the registry lacks (one new pack).
 *
 * @example
 * await exportMount({ client, repo: { host: 'localhost:5000', repository: 'team/cache' }, key: '/root/.cache/pip', id: '/root/.cache/pip', dir, tmpDir });
 */
export async function exportMount(o: ExportMountOptions): Promise<MountTransferReport> {
  const now = o.now ?? Date.now();
  const local = await walkMount(o.dir, now, o.signal);
  const tag = mountTag(o.key);
  const ref: RegistryRef = { host: o.repo.host, repository: o.repo.repository, tag };
  const sig = o.signal ? { signal: o.signal } : {};
  let ourPack: MountIndex['packs'][number] | undefined;
  let uploaded = 0;
  for (let round = 0; ; round++) {
    const remote = await readMountIndex(o).catch((err: unknown) => {
      // none yet: this export starts it; anything else (unreachable, a bad index) must not replace the team's index
      if (isRegistryNotFound(err)) return undefined;
      throw err;
    });
    if (remote && round === 0 && unchanged(remote.index, local, now)) {
      // the team's index already says all this (and saw it lately): no new manifest
      return { key: o.key, files: remote.index.files.length, bytes: 0, packs: 0 };
    }
    const byPath = new Map<string, MountFile>();
    for (const f of remote?.index.files ?? []) if (now - f.seen <= MOUNT_ENTRY_MAX_AGE_MS) byPath.set(f.path, f);
    for (const f of local.values()) byPath.set(f.path, f);
    const packs = [...(remote?.index.packs ?? []), ...(ourPack && !remote?.index.packs.some((p) => p.blob === ourPack!.blob) ? [ourPack] : [])];
    const stored = new Set(packs.flatMap((p) => p.contents));
    const missing = new Map<string, string>();
    for (const f of byPath.values()) if (f.digest && !stored.has(f.digest.slice(7)) && local.get(f.path)?.digest === f.digest) missing.set(f.digest.slice(7), path.join(o.dir, f.path));
    if (missing.size > 0) {
      const pack = await writePack({ files: missing, tmpDir: o.tmpDir, ...sig });
      try {
        for (const lost of pack.changed) for (const [p, f] of byPath) if (f.digest?.slice(7) === lost && local.has(p)) byPath.delete(p);
        if (pack.contents.length > 0) {
          await o.client.pushBlob({ host: ref.host, repository: ref.repository, descriptor: { mediaType: MediaType.OciLayerGzip, digest: pack.digest, size: pack.size }, source: fileSource(pack.file, pack.size), ...sig });
          ourPack = { blob: pack.digest, size: pack.size, contents: pack.contents };
          packs.push(ourPack);
          uploaded += pack.bytes;
        }
      } finally {
        await fsp.rm(pack.file, { force: true });
      }
    }
    // a file whose content is in no pack (it changed under us and was dropped above) is left out
    const have = new Set(packs.flatMap((p) => p.contents));
    const files = [...byPath.values()].filter((f) => !f.digest || have.has(f.digest.slice(7))).sort((a, b) => (a.path < b.path ? -1 : 1));
    const used = new Set(files.flatMap((f) => (f.digest ? [f.digest.slice(7)] : [])));
    const keep = packs.filter((p) => p.contents.some((c) => used.has(c)));
    const index: MountIndex = { version: 1, id: o.id, key: o.key, files, packs: keep };
    const mine = await putMountIndex({ ...o, ref, index });
    const now2 = await o.client.headManifest(ref, sig);
    if (!now2 || now2.digest === mine || round + 1 >= MERGE_ROUNDS) {
      // an index holding nothing this directory lacks need not be imported into it again
      if (o.stateFile && now2?.digest === mine && files.every((f) => local.has(f.path))) await rememberMerged(o.stateFile, `${ref.host}/${ref.repository}:${tag}`, mine);
      return { key: o.key, files: files.length, bytes: uploaded, packs: ourPack ? 1 : 0 };
    }
    // another writer put its index in between: merge again on top of it
  }
}

/** Every local entry is in the index as it is here, seen within a day, and the index holds its content. */
function unchanged(index: MountIndex, local: Map<string, MountFile>, now: number): boolean {
  const remote = new Map(index.files.map((f) => [f.path, f]));
  const stored = new Set(index.packs.flatMap((p) => p.contents));
  for (const f of local.values()) {
    const r = remote.get(f.path);
    if (!r || now - r.seen > 24 * 3600_000) return false;
    if (r.type !== f.type || r.mode !== f.mode || r.uid !== f.uid || r.gid !== f.gid || r.mtime !== f.mtime || r.digest !== f.digest || r.link !== f.link) return false;
    if (f.digest && !stored.has(f.digest.slice(7))) return false;
  }
  return true;
}

async function putMountIndex(o: MountTarget & { ref: RegistryRef; index: MountIndex }): Promise<Digest> {
  const sig = o.signal ? { signal: o.signal } : {};
  const cfgData = Buffer.from(JSON.stringify(o.index));
  const config: Descriptor = { mediaType: MOUNT_CONFIG_MEDIA_TYPE, digest: sha256(cfgData), size: cfgData.length };
  await o.client.pushBlob({ host: o.ref.host, repository: o.ref.repository, descriptor: config, source: bufferSource(cfgData), ...sig });
  const manifest: Manifest = {
    schemaVersion: 2,
    mediaType: MediaType.OciManifest,
    config,
    layers: o.index.packs.map((p) => ({ mediaType: MediaType.OciLayerGzip, digest: p.blob, size: p.size, annotations: { [PACK_ANNOTATION]: 'v1' } })),
    annotations: { 'dev.kiln.cache.mount.id': o.index.id },
  };
  return o.client.putManifest({ host: o.ref.host, repository: o.ref.repository, reference: o.ref.tag!, data: Buffer.from(JSON.stringify(manifest)), mediaType: MediaType.OciManifest, ...sig });
}

/** The mount's tree: every directory, file and symlink under `dir` (sockets, fifos and devices left out). */
async function walkMount(dir: string, now: number, signal?: AbortSignal): Promise<Map<string, MountFile>> {
  const out = new Map<string, MountFile>();
  const visit = async (rel: string): Promise<void> => {
    signal?.throwIfAborted();
    for (const name of (await fsp.readdir(path.join(dir, rel)).catch(() => [] as string[])).sort()) {
      const r = rel ? `${rel}/${name}` : name;
      const abs = path.join(dir, r);
      const st = await fsp.lstat(abs).catch(() => undefined);
      if (!st) continue;
      const base = { path: r, mode: st.mode & 0o7777, uid: st.uid, gid: st.gid, mtime: Math.floor(st.mtimeMs / 1000), seen: now };
      if (st.isDirectory()) {
        out.set(r, { ...base, type: 'dir' });
        await visit(r);
      } else if (st.isSymbolicLink()) {
        out.set(r, { ...base, type: 'symlink', link: await fsp.readlink(abs) });
      } else if (st.isFile()) {
        const digest = await hashFile(abs).catch(() => undefined);
        const after = await fsp.lstat(abs).catch(() => undefined);
        // being written right now: leave it for the next export rather than share a torn file
        if (!digest || !after || after.size !== st.size || after.mtimeMs !== st.mtimeMs) continue;
        out.set(r, { ...base, type: 'file', size: st.size, digest });
      }
    }
  };
  await visit('');
  return out;
}

async function hashFile(file: string): Promise<Digest> {
  const h = createHash('sha256');
  for await (const c of createReadStream(file)) h.update(c as Buffer);
  return `sha256:${h.digest('hex')}`;
}

/** Write a pack of the given contents (hex → a file holding it); a file whose bytes changed since is left out. */
/** A pass-through stream that hashes (sha256) and counts what flows through it. */
function digestTap(): { stream: PassThrough; digest: () => Digest; size: () => number } {
  const hash = createHash('sha256');
  let size = 0;
  const stream = new PassThrough({
    transform(chunk: Buffer, _e, cb) {
      hash.update(chunk);
      size += chunk.length;
      cb(null, chunk);
    },
  });
  return { stream, digest: () => `sha256:${hash.digest('hex')}`, size: () => size };
}

async function writePack(o: { files: Map<string, string>; tmpDir: string; signal?: AbortSignal }): Promise<{ file: string; digest: Digest; size: number; bytes: number; contents: string[]; changed: string[] }> {
  await fsp.mkdir(o.tmpDir, { recursive: true });
  const file = path.join(o.tmpDir, `mount-pack-${randomBytes(6).toString('hex')}.tar.gz`);
  const pack = tar.pack();
  const count = digestTap();
  const done = pipeline(pack, createGzip({ level: 6 }), count.stream, createWriteStream(file), ...(o.signal ? [{ signal: o.signal }] : []));
  const contents: string[] = [];
  const changed: string[] = [];
  let bytes = 0;
  try {
    for (const [hex, src] of [...o.files].sort(([a], [b]) => (a < b ? -1 : 1))) {
      o.signal?.throwIfAborted();
      const data = await fsp.readFile(src).catch(() => undefined);
      if (!data || sha256(data) !== `sha256:${hex}`) {
        changed.push(hex);
        continue;
      }
      await new Promise<void>((resolve, reject) => pack.entry({ name: `sha256/${hex}`, size: data.length, mode: 0o644, mtime: new Date(0) }, data, (err) => (err ? reject(err) : resolve())));
      contents.push(hex);
      bytes += data.length;
    }
    pack.finalize();
    await done;
  } catch (err) {
    pack.destroy();
    await done.catch(() => undefined);
    await fsp.rm(file, { force: true });
    throw err;
  }
  return { file, digest: count.digest(), size: count.size(), bytes, contents, changed };
}

// ---------------------------------------------------------------- import

/** The registry's index of a mount, and its manifest digest; not-found when there is none. */
async function readMountIndex(o: MountTarget): Promise<{ index: MountIndex; manifest: Digest }> {
  const sig = o.signal ? { signal: o.signal } : {};
  const ref: RegistryRef = { host: o.repo.host, repository: o.repo.repository, tag: mountTag(o.key) };
  const m = await o.client.getManifest(ref, sig);
  const manifest = JSON.parse(m.data.toString('utf8')) as Manifest;
  if (manifest.config?.mediaType !== MOUNT_CONFIG_MEDIA_TYPE) throw new BuildError('ERR_KILN_CACHE_SOURCE', `${ref.repository}:${ref.tag} is not a kiln cache mount`);
  const chunks: Buffer[] = [];
  await o.client.fetchBlob({ host: ref.host, repository: ref.repository, descriptor: manifest.config, sink: collect(chunks), ...sig });
  const index = checkIndex(JSON.parse(Buffer.concat(chunks).toString('utf8')), `${ref.repository}:${ref.tag}`);
  return { index, manifest: m.descriptor.digest };
}

function collect(chunks: Buffer[]): Writable {
  return new Writable({
    write(c: Buffer, _e, cb) {
      chunks.push(c);
      cb();
    },
  });
}

/** Keep only well-formed entries with safe relative paths. */
function checkIndex(v: unknown, where: string): MountIndex {
  const x = v as Partial<MountIndex> | null;
  if (!x || x.version !== 1 || !Array.isArray(x.files) || !Array.isArray(x.packs)) throw new BuildError('ERR_KILN_CACHE_SOURCE', `${where}: not a kiln cache mount index of version 1`);
  const digest = (s: unknown): boolean => typeof s === 'string' && /^sha256:[a-f0-9]{64}$/.test(s);
  const files = x.files.filter((f) => f && typeof f.path === 'string' && safeRel(f.path) && ['file', 'dir', 'symlink'].includes(f.type)
    && Number.isInteger(f.mode) && Number.isInteger(f.uid) && Number.isInteger(f.gid) && Number.isFinite(f.mtime) && Number.isFinite(f.seen)
    && (f.type !== 'file' || digest(f.digest)) && (f.type !== 'symlink' || typeof f.link === 'string'));
  const packs = x.packs.filter((p) => p && digest(p.blob) && Number.isSafeInteger(p.size) && Array.isArray(p.contents) && p.contents.every((c) => typeof c === 'string' && /^[a-f0-9]{64}$/.test(c)));
  return { version: 1, id: String(x.id ?? ''), key: String(x.key ?? ''), files, packs };
}

function safeRel(p: string): boolean {
  return p.length > 0 && !p.startsWith('/') && !p.includes('\0') && p.split('/').every((s) => s !== '' && s !== '.' && s !== '..');
}

/** Options of {@link importMount}. */
export interface ImportMountOptions extends MountTarget {
  /** the mount's data directory: entries it lacks are added, what it has is kept */
  dir: string;
  /** a scratch directory on the same filesystem as `dir` */
  tmpDir: string;
  /** remembers the last index merged, so an unchanged one costs one HEAD request */
  stateFile: string;
}

/**
 * Bring a cache mount's shared contents into its local directory: every entry the directory lacks is created
 * (files from the packs that hold them, each checked against its sha256); entries already here are left alone, so
 * a build using the mount meanwhile never sees a file change under it. Nothing is written outside `dir`: an entry
 * under a symlink or a non-directory is skipped.
 *
 * @example
 * await importMount({ client, repo, key: '/root/.cache/pip', dir, tmpDir, stateFile });
 */
export async function importMount(o: ImportMountOptions): Promise<MountTransferReport> {
  const report: MountTransferReport = { key: o.key, files: 0, bytes: 0, packs: 0 };
  const sig = o.signal ? { signal: o.signal } : {};
  const ref: RegistryRef = { host: o.repo.host, repository: o.repo.repository, tag: mountTag(o.key) };
  const head = await o.client.headManifest(ref, sig);
  if (!head) return report;
  const seenKey = `${ref.host}/${ref.repository}:${ref.tag}`;
  const state = await readState(o.stateFile);
  if (state[seenKey] === head.digest) return report;
  const { index, manifest } = await readMountIndex(o);

  const wanted = new Map<string, MountFile[]>();
  const entries = [...index.files].sort((a, b) => (a.path < b.path ? -1 : 1));
  const made: MountFile[] = [];
  for (const f of entries) {
    o.signal?.throwIfAborted();
    const dest = path.join(o.dir, f.path);
    if (!(await parentsInside(o.dir, f.path))) continue;
    if (await fsp.lstat(dest).then(() => true, () => false)) continue;
    if (f.type === 'dir') {
      await fsp.mkdir(dest, { mode: f.mode });
      made.push(f);
    } else if (f.type === 'symlink') {
      await fsp.symlink(f.link!, dest);
      await lchownRoot(dest, f);
      await fsp.lutimes(dest, f.mtime, f.mtime).catch(() => undefined);
      report.files++;
    } else {
      const hex = f.digest!.slice(7);
      wanted.set(hex, [...(wanted.get(hex) ?? []), f]);
    }
  }
  const packs = index.packs.filter((p) => p.contents.some((c) => wanted.has(c)));
  await fsp.mkdir(o.tmpDir, { recursive: true });
  for (const p of packs) {
    const todo = new Set(p.contents.filter((c) => wanted.has(c)));
    if (todo.size === 0) continue; // an earlier pack had them all
    const file = path.join(o.tmpDir, `mount-pack-${randomBytes(6).toString('hex')}`);
    try {
      // checked against its digest while it downloads
      await o.client.fetchBlob({ host: ref.host, repository: ref.repository, descriptor: { mediaType: MediaType.OciLayerGzip, digest: p.blob, size: p.size }, sink: createWriteStream(file), ...sig });
      report.packs++;
      report.bytes += await unpackInto({ pack: file, todo, wanted, dir: o.dir, tmpDir: o.tmpDir, report, ...sig });
    } finally {
      await fsp.rm(file, { force: true });
    }
  }
  // directories last: their mode may forbid writing into them; then their times, deepest first
  for (const f of made.reverse()) {
    await fsp.chmod(path.join(o.dir, f.path), f.mode).catch(() => undefined);
    await lchownRoot(path.join(o.dir, f.path), f);
    await fsp.utimes(path.join(o.dir, f.path), f.mtime, f.mtime).catch(() => undefined);
    report.files++;
  }
  await rememberMerged(o.stateFile, seenKey, manifest);
  return report;
}

async function readState(stateFile: string): Promise<Record<string, string>> {
  try {
    const v = JSON.parse(await fsp.readFile(stateFile, 'utf8')) as unknown;
    return v && typeof v === 'object' ? (v as Record<string, string>) : {};
  } catch {
    return {}; // none yet, or torn: the next import merges again, which is only slower
  }
}

/** Note in the mount's state file that the index `manifest` of `where` is in its directory. */
async function rememberMerged(stateFile: string, where: string, manifest: Digest): Promise<void> {
  const state = await readState(stateFile);
  state[where] = manifest;
  const tmp = `${stateFile}.${randomBytes(4).toString('hex')}`;
  await fsp.writeFile(tmp, JSON.stringify(state));
  await fsp.rename(tmp, stateFile);
}

/**
 * Every parent of `rel` inside `dir` is a real directory (not a symlink), so writing there stays inside; a missing
 * one (an index without its directory entries) is made.
 */
async function parentsInside(dir: string, rel: string): Promise<boolean> {
  const parts = rel.split('/').slice(0, -1);
  let cur = dir;
  for (const p of parts) {
    cur = path.join(cur, p);
    let st = await fsp.lstat(cur).catch(() => undefined);
    if (!st) {
      await fsp.mkdir(cur, { mode: 0o755 }).catch((err: NodeJS.ErrnoException) => {
        if (err.code !== 'EEXIST') throw err;
      });
      st = await fsp.lstat(cur).catch(() => undefined);
    }
    if (!st?.isDirectory()) return false;
  }
  return true;
}

async function lchownRoot(p: string, f: MountFile): Promise<void> {
  if (process.getuid?.() !== 0) return;
  await fsp.lchown(p, f.uid, f.gid).catch(() => undefined);
}

/**
 * Extract the wanted contents of one pack into every path that has it, each streamed to a temp file and checked
 * against its sha256 first; returns the bytes taken.
 */
async function unpackInto(o: { pack: string; todo: Set<string>; wanted: Map<string, MountFile[]>; dir: string; tmpDir: string; report: MountTransferReport; signal?: AbortSignal }): Promise<number> {
  const extract = tar.extract();
  let bytes = 0;
  extract.on('entry', (header, stream, next) => {
    const hex = /^sha256\/([a-f0-9]{64})$/.exec(header.name)?.[1];
    if (!hex || !o.todo.has(hex) || header.type !== 'file') {
      stream.resume();
      stream.on('end', next);
      return;
    }
    const tmp = path.join(o.tmpDir, `content-${randomBytes(6).toString('hex')}`);
    const tap = digestTap();
    pipeline(stream, tap.stream, createWriteStream(tmp))
      .then(async () => {
        if (tap.digest() !== `sha256:${hex}`) {
          throw new BuildError('ERR_KILN_STORE_CORRUPT', `cache mount pack ${o.pack}: entry ${hex} does not hash to its name`);
        }
        o.todo.delete(hex);
        bytes += await place(o, hex, tmp, tap.size());
        o.wanted.delete(hex);
      })
      .finally(() => fsp.rm(tmp, { force: true }))
      .then(() => next(), next);
  });
  await pipeline(createReadStream(o.pack), createGunzip(), extract, ...(o.signal ? [{ signal: o.signal }] : []));
  return bytes;
}

/** Copy the content to each path wanting it: a temp file beside it, then a link that never replaces an existing one. */
async function place(o: { wanted: Map<string, MountFile[]>; dir: string; report: MountTransferReport }, hex: string, content: string, size: number): Promise<number> {
  let n = 0;
  for (const f of o.wanted.get(hex) ?? []) {
    const dest = path.join(o.dir, f.path);
    if (!(await parentsInside(o.dir, f.path))) continue;
    const tmp = path.join(path.dirname(dest), `.kiln-import-${randomBytes(6).toString('hex')}`);
    await fsp.copyFile(content, tmp);
    try {
      await fsp.chmod(tmp, f.mode);
      await lchownRoot(tmp, f);
      await fsp.utimes(tmp, f.mtime, f.mtime);
      await fsp.link(tmp, dest).then(
        () => {
          o.report.files++;
          n += size;
        },
        (err: NodeJS.ErrnoException) => {
          if (err.code !== 'EEXIST') throw err; // a build wrote it meanwhile: its copy wins
        },
      );
    } finally {
      await fsp.rm(tmp, { force: true });
    }
  }
  return n;
}
