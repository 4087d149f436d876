import { spawn } from 'node:child_process';
import fs from 'node:fs';
import { Readable } from 'node:stream';
import zlib from 'node:zlib';
import { BuildError, isBuildError } from '../errors/index.js';
import { TarParser, type EntrySink, type ParsedEntry } from './tar-parser.js';

type Compression = 'gzip' | 'zstd' | 'none';

/** Detect compression from the first bytes of a layer. */
export function detectCompression(head: Buffer): Compression {
  if (head.length >= 2 && head[0] === 0x1f && head[1] === 0x8b) return 'gzip';
  if (head.length >= 4 && head.readUInt32LE(0) === 0xfd2fb528) return 'zstd';
  if (head.length >= 6 && head.subarray(0, 6).equals(Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]))) {
    throw new BuildError('ERR_KILN_ARCHIVE_INVALID', 'xz-compressed layers are not supported', { hint: 'use gzip, zstd or an uncompressed tar' });
  }
  if (head.length >= 3 && head.toString('latin1', 0, 3) === 'BZh') {
    throw new BuildError('ERR_KILN_ARCHIVE_INVALID', 'bzip2-compressed layers are not supported', { hint: 'use gzip, zstd or an uncompressed tar' });
  }
  return 'none';
}

function openSource(source: string | Readable): Readable {
  if (typeof source !== 'string') return source;
  try {
    fs.accessSync(source, fs.constants.R_OK);
  } catch (cause) {
    throw new BuildError('ERR_KILN_ARCHIVE_NOT_FOUND', `layer archive ${source} cannot be read`, { cause });
  }
  return fs.createReadStream(source, { highWaterMark: 256 * 1024 });
}

type ZlibWithZstd = typeof zlib & { createZstdDecompress?: () => NodeJS.ReadWriteStream };

function zstdStream(input: Readable): Readable {
  const native = (zlib as ZlibWithZstd).createZstdDecompress;
  if (typeof native === 'function') {
    const z = native() as unknown as NodeJS.WritableStream & Readable;
    input.on('error', (err) => z.destroy(err));
    z.once('close', () => input.destroy());
    return input.pipe(z);
  }
  const child = spawn('zstd', ['-d', '-c', '-q'], { stdio: ['pipe', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (d: string) => {
    if (stderr.length < 4096) stderr += d;
  });
  child.on('error', (err: NodeJS.ErrnoException) => {
    const e =
      err.code === 'ENOENT'
        ? new BuildError('ERR_KILN_LAYER_TOOL_MISSING', 'zstd is not installed; kiln needs it to read zstd layers', {
          cause: err, hint: 'apt-get install -y zstd',
        })
        : err;
    child.stdout.destroy(e);
  });
  child.on('close', (code) => {
    if (code !== 0 && code !== null) {
      child.stdout.destroy(new BuildError('ERR_KILN_ARCHIVE_INVALID', `zstd could not decompress the layer: ${stderr.trim()}`));
    }
  });
  child.stdin.on('error', () => undefined);
  input.on('error', (err) => child.stdout.destroy(err));
  input.pipe(child.stdin);
  const out = child.stdout;
  out.once('close', () => {
    if (child.exitCode === null) child.kill();
    input.destroy();
  });
  return out;
}

/** Open a layer (any supported compression) as a stream of tar bytes. */
async function openTarStream(source: string | Readable): Promise<Readable> {
  const src = openSource(source);
  const it = src[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
  const parts: Buffer[] = [];
  let have = 0;
  while (have < 6) {
    const r = await it.next();
    if (r.done) break;
    const b = Buffer.isBuffer(r.value) ? r.value : Buffer.from(r.value as Uint8Array);
    parts.push(b);
    have += b.length;
  }
  const head = Buffer.concat(parts);
  const kind = detectCompression(head);
  async function* all(): AsyncGenerator<Buffer> {
    if (head.length > 0) yield head;
    for (;;) {
      const r = await it.next();
      if (r.done) return;
      yield r.value;
    }
  }
  const raw = Readable.from(all(), { objectMode: false, highWaterMark: 256 * 1024 });
  raw.once('close', () => src.destroy());
  if (kind === 'gzip') {
    const gun = zlib.createGunzip({ chunkSize: 256 * 1024 });
    raw.on('error', (err) => gun.destroy(err));
    gun.once('close', () => raw.destroy());
    return raw.pipe(gun);
  }
  if (kind === 'zstd') return zstdStream(raw);
  return raw;
}

function wrapReadError(err: unknown): unknown {
  if (isBuildError(err)) return err;
  const e = err as NodeJS.ErrnoException;
  if (e && typeof e.code === 'string' && e.code.startsWith('Z_')) {
    return new BuildError('ERR_KILN_ARCHIVE_INVALID', `the layer's compressed data is corrupt or truncated: ${e.message}`, { cause: err });
  }
  if (e && e.name === 'AbortError') return err;
  return err;
}

/**
 * Read a layer and call `onEntry` for every entry (synchronously, in archive order); entry data goes to the sink
 * `onEntry` returns. Resolves with the number of entries once the end-of-archive marker (or the end of input) is
 * reached. @internal
 */
export async function readTar(opts: {
  source: string | Readable;
  onEntry: (e: ParsedEntry) => EntrySink | null;
  signal?: AbortSignal;
}): Promise<number> {
  opts.signal?.throwIfAborted();
  let count = 0;
  const parser = new TarParser((e) => {
    count++;
    return opts.onEntry(e);
  });
  const stream = await openTarStream(opts.source);
  try {
    for await (const chunk of stream) {
      opts.signal?.throwIfAborted();
      parser.push(chunk as Buffer);
      if (parser.ended) break;
    }
    parser.end();
  } catch (err) {
    throw wrapReadError(err);
  } finally {
    stream.destroy();
  }
  return count;
}
