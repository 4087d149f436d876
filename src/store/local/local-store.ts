import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream, promises as fsp } from 'node:fs';
import path from 'node:path';
import { Writable, type Readable } from 'node:stream';
import { BuildError, isNoSpace, whileWriting } from '../../errors/index.js';
import { digestHex, isDigest, type Digest } from '../../oci/index.js';
import type { BlobInfo, BlobWriter, ContentStore } from '../types.js';
import { pidAlive } from '../../proc/index.js';

export interface LocalStoreOptions {
  /** Folder that holds `blobs/sha256/<hex>` and `ingest/`. */
  root: string;
}

/** A content-addressed store on the local file system: temp file, fsync, rename. */
export async function createLocalStore(opts: LocalStoreOptions): Promise<ContentStore> {
  const root = opts.root;
  const blobDir = path.join(root, 'blobs', 'sha256');
  const ingestDir = path.join(root, 'ingest');
  await fsp.mkdir(blobDir, { recursive: true });
  await fsp.mkdir(ingestDir, { recursive: true });

  const blobPath = (d: Digest): string => {
    if (!isDigest(d)) throw new Error(`not a sha256 digest: ${d}`);
    return path.join(blobDir, digestHex(d));
  };

  async function info(d: Digest): Promise<BlobInfo | undefined> {
    try {
      const st = await fsp.stat(blobPath(d));
      return { digest: d, size: st.size };
    } catch {
      return undefined;
    }
  }

  async function writer(): Promise<BlobWriter> {
    const tmp = path.join(ingestDir, `${process.pid}-${randomBytes(8).toString('hex')}`);
    const fh = await fsp.open(tmp, 'wx', 0o644);
    const hash = createHash('sha256');
    let size = 0;
    let done = false;
    const file = createWriteStream('', { fd: fh.fd, autoClose: false } as Parameters<typeof createWriteStream>[1]);
    let fileError: Error | undefined;
    file.on('error', (err) => {
      fileError = err;
    });
    const stream = new Writable({
      write(chunk: Buffer, _enc, cb) {
        if (fileError) return cb(fileError);
        hash.update(chunk);
        size += chunk.length;
        if (file.write(chunk)) return cb();
        // wait for 'drain' — or for the error that means it never comes (a full disk): a missed error here left the
        // layer writer waiting forever and the build exiting 0 with no image
        const onDrain = (): void => {
          file.off('error', onError);
          cb();
        };
        const onError = (err: Error): void => {
          file.off('drain', onDrain);
          cb(err);
        };
        file.once('drain', onDrain);
        file.once('error', onError);
      },
      final(cb) {
        if (fileError) return cb(fileError);
        file.end((err?: Error | null) => cb(err ?? fileError ?? null));
      },
    });
    const commitBlob = async (c: { expected?: Digest }): Promise<BlobInfo> => {
      if (!stream.writableFinished) {
        await new Promise<void>((resolve, reject) => {
          stream.once('finish', resolve);
          stream.once('error', reject);
          if (!stream.writableEnded) stream.end();
        });
      }
      const digest = `sha256:${hash.digest('hex')}` as Digest;
      await fh.sync();
      await fh.close();
      done = true;
      if (c.expected && c.expected !== digest) {
        await fsp.rm(tmp, { force: true });
        throw new BuildError('ERR_KILN_STORE_CORRUPT', `content digest mismatch: expected ${c.expected}, got ${digest}`);
      }
      await fsp.rename(tmp, blobPath(digest));
      return { digest, size };
    };
    return {
      stream,
      async commit(c = {}) {
        try {
          return await commitBlob(c);
        } catch (err) {
          // a full disk: the partial blob is removed here, not at the next start
          if (isNoSpace(err)) await fsp.rm(tmp, { force: true }).catch(() => undefined);
          throw whileWriting(err, { what: 'a blob', where: root });
        }
      },
      async abort() {
        if (done) return;
        done = true;
        // the fd belongs to fh (autoClose is off): end the stream without closing it, then close fh once
        if (!stream.destroyed) stream.destroy();
        await new Promise<void>((resolve) => {
          if (file.closed || file.destroyed || file.writableFinished) resolve();
          else file.end(() => resolve());
          setTimeout(resolve, 1000).unref();
        });
        await fh.close().catch(() => undefined);
        await fsp.rm(tmp, { force: true });
      },
    };
  }

  async function write(data: Uint8Array | string, o: { expected?: Digest } = {}): Promise<BlobInfo> {
    const buf = typeof data === 'string' ? Buffer.from(data) : Buffer.from(data.buffer, data.byteOffset, data.byteLength);
    const digest = `sha256:${createHash('sha256').update(buf).digest('hex')}` as Digest;
    if (o.expected && o.expected !== digest) {
      throw new BuildError('ERR_KILN_STORE_CORRUPT', `content digest mismatch: expected ${o.expected}, got ${digest}`);
    }
    const existing = await info(digest);
    if (existing && existing.size === buf.length) return existing;
    const tmp = path.join(ingestDir, `${process.pid}-${randomBytes(8).toString('hex')}`);
    const fh = await fsp.open(tmp, 'wx', 0o644);
    try {
      await fh.writeFile(buf);
      await fh.sync();
    } catch (err) {
      await fh.close().catch(() => undefined);
      await fsp.rm(tmp, { force: true }).catch(() => undefined);
      throw whileWriting(err, { what: 'a blob', where: root });
    }
    await fh.close();
    await fsp.rename(tmp, blobPath(digest));
    return { digest, size: buf.length };
  }

  async function read(d: Digest, o: { verify?: boolean } = {}): Promise<Buffer> {
    let buf: Buffer;
    try {
      buf = await fsp.readFile(blobPath(d));
    } catch {
      throw new BuildError('ERR_KILN_STORE_NOT_FOUND', `blob ${d} is not in the store`);
    }
    if (o.verify !== false) {
      const got = `sha256:${createHash('sha256').update(buf).digest('hex')}`;
      if (got !== d) throw new BuildError('ERR_KILN_STORE_CORRUPT', `blob ${d} is corrupt (content hashes to ${got})`);
    }
    return buf;
  }

  async function verify(d: Digest): Promise<boolean> {
    const hash = createHash('sha256');
    try {
      for await (const chunk of createReadStream(blobPath(d))) hash.update(chunk as Buffer);
    } catch {
      return false;
    }
    return `sha256:${hash.digest('hex')}` === d;
  }

  async function* list(): AsyncIterable<BlobInfo> {
    for (const name of await fsp.readdir(blobDir)) {
      const d = `sha256:${name}` as Digest;
      if (!isDigest(d)) continue;
      const i = await info(d);
      if (i) yield i;
    }
  }

  return {
    root,
    has: async (d) => (await info(d)) !== undefined,
    info,
    path: blobPath,
    read,
    createReadStream: (d): Readable => createReadStream(blobPath(d)),
    write,
    writer,
    list,
    verify,
    delete: async (d) => fsp.rm(blobPath(d), { force: true }),
  };
}

/** Remove temp files left by a killed process (none of them is trusted). */
export async function cleanIngest(root: string): Promise<void> {
  const dir = path.join(root, 'ingest');
  for (const name of await fsp.readdir(dir).catch(() => [] as string[])) {
    const pid = Number(name.split('-')[0]);
    if (pid && pid !== process.pid && pidAlive(pid)) continue;
    if (pid === process.pid) continue;
    await fsp.rm(path.join(dir, name), { force: true });
  }
}
