import { createReadStream, promises as fsp } from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import tar from 'tar-stream';
import { BuildError } from '../../errors/index.js';

/** One file, folder or link of an archive (a tar, or a folder on disk), with a safe relative name. @internal */
export interface ArchiveEntry {
  /** `/`-separated, relative, without `.` or `..` parts; '' for the root. */
  name: string;
  type: 'file' | 'directory' | 'symlink' | 'link' | 'other';
  size: number;
  /** Target of a link, as an archive-relative name (resolved and checked to stay inside). */
  target?: string;
  /** The file's bytes; call at most once, and only for files. */
  open(): Readable;
}

type TarEntry = tar.Extract extends AsyncIterable<infer T> ? T : never;

const GZIP_MAGIC = [0x1f, 0x8b];

/** Make an entry name relative and safe, or throw ERR_KILN_ARCHIVE_UNSAFE. @internal */
export function cleanEntryName(raw: string, archive: string): string {
  if (raw.startsWith('/') || raw.split('/').includes('..') || raw.includes('\0')) {
    throw new BuildError('ERR_KILN_ARCHIVE_UNSAFE', `${archive} has an unsafe entry "${raw}" (absolute or with "..")`);
  }
  return raw.split('/').filter((p) => p !== '' && p !== '.').join('/');
}

/** Resolve a symlink target relative to the link's folder; throw ERR_KILN_ARCHIVE_UNSAFE when it leaves the archive. @internal */
export function resolveLinkTarget(opts: { name: string; target: string; archive: string }): string {
  const unsafe = (): BuildError =>
    new BuildError('ERR_KILN_ARCHIVE_UNSAFE', `${opts.archive} has a link "${opts.name}" pointing outside the archive ("${opts.target}")`);
  if (opts.target.startsWith('/')) throw unsafe();
  const parts = opts.name.split('/').slice(0, -1);
  for (const p of opts.target.split('/')) {
    if (p === '' || p === '.') continue;
    if (p === '..') {
      if (parts.length === 0) throw unsafe();
      parts.pop();
    } else parts.push(p);
  }
  return parts.join('/');
}

/** List the entries of `source`, a folder or a (possibly gzip-compressed) tar file. @internal */
export async function* readArchiveEntries(source: string, signal?: AbortSignal): AsyncGenerator<ArchiveEntry> {
  let st;
  try {
    st = await fsp.stat(source);
  } catch (err) {
    throw new BuildError('ERR_KILN_ARCHIVE_NOT_FOUND', `cannot open archive ${source}: ${(err as Error).message}`, { cause: err });
  }
  if (st.isDirectory()) yield* dirEntries(source, signal);
  else yield* tarEntries(source, signal);
}

async function* dirEntries(root: string, signal?: AbortSignal): AsyncGenerator<ArchiveEntry> {
  const walk = async function* (rel: string): AsyncGenerator<ArchiveEntry> {
    const names = (await fsp.readdir(path.join(root, rel))).sort();
    for (const n of names) {
      signal?.throwIfAborted();
      const name = rel === '' ? n : `${rel}/${n}`;
      const full = path.join(root, name);
      const st = await fsp.lstat(full);
      if (st.isDirectory()) {
        yield { name, type: 'directory', size: 0, open: noBody(name) };
        yield* walk(name);
      } else if (st.isSymbolicLink()) {
        const target = resolveLinkTarget({ name, target: await fsp.readlink(full), archive: root });
        yield { name, type: 'symlink', size: 0, target, open: noBody(name) };
      } else if (st.isFile()) {
        yield { name, type: 'file', size: st.size, open: () => createReadStream(full) };
      } else {
        yield { name, type: 'other', size: 0, open: noBody(name) };
      }
    }
  };
  yield* walk('');
}

async function* tarEntries(file: string, signal?: AbortSignal): AsyncGenerator<ArchiveEntry> {
  const gzip = await startsWith(file, GZIP_MAGIC);
  const extract = tar.extract();
  const src = createReadStream(file);
  const feeding = gzip ? pipeline(src, createGunzip(), extract, { signal }) : pipeline(src, extract, { signal });
  let feedError: unknown;
  feeding.catch((err) => {
    feedError = err;
  });
  const invalid = (err: unknown): unknown => {
    if ((err as Error)?.name === 'AbortError' || err instanceof BuildError) return err;
    return new BuildError('ERR_KILN_IMAGE_INVALID', `${file} is not a readable tar archive: ${(err as Error)?.message ?? String(err)}`, { cause: err });
  };
  const iterator = extract[Symbol.asyncIterator]();
  try {
    for (;;) {
      let next: IteratorResult<TarEntry>;
      try {
        next = await iterator.next();
      } catch (err) {
        throw invalid(feedError ?? err);
      }
      if (next.done) break;
      const e = next.value;
      const h = e.header;
      const name = cleanEntryName(h.name, file);
      let opened = false;
      const open = (): Readable => {
        if (opened) throw new Error(`entry ${name} was already read`);
        opened = true;
        return Readable.from(chunks(e), { objectMode: false });
      };
      const type = h.type === 'file' || h.type === 'contiguous-file' ? 'file'
        : h.type === 'directory' ? 'directory'
        : h.type === 'symlink' ? 'symlink'
        : h.type === 'link' ? 'link' : 'other';
      let target: string | undefined;
      if (type === 'symlink') target = resolveLinkTarget({ name, target: h.linkname ?? '', archive: file });
      if (type === 'link') target = cleanEntryName(h.linkname ?? '', file);
      yield { name, type, size: h.size ?? 0, target, open };
      if (!opened) e.resume();
    }
    await feeding.catch((err) => {
      throw invalid(err);
    });
  } finally {
    if (!extract.destroyed) extract.destroy();
    src.destroy();
  }
}

async function startsWith(file: string, magic: number[]): Promise<boolean> {
  const fh = await fsp.open(file, 'r');
  try {
    const buf = Buffer.alloc(magic.length);
    const { bytesRead } = await fh.read(buf, 0, magic.length, 0);
    return bytesRead === magic.length && magic.every((b, i) => buf[i] === b);
  } finally {
    await fh.close();
  }
}

async function* chunks(e: TarEntry): AsyncGenerator<Buffer> {
  for await (const c of e) yield c as Buffer;
}

function noBody(name: string): () => Readable {
  return () => {
    throw new Error(`${name} is not a file`);
  };
}
