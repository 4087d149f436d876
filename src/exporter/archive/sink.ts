import { randomBytes } from 'node:crypto';
import { createWriteStream, promises as fsp } from 'node:fs';
import path from 'node:path';
import type { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import tar from 'tar-stream';

/**
 * Where an archive writer puts its entries: one tar stream, or a folder. Names are `/`-separated and relative.
 * @internal
 */
export interface ArchiveSink {
  /** True when the file is already there (a folder that already holds a layout). */
  exists(name: string): Promise<boolean>;
  directory(name: string): Promise<void>;
  file(name: string, data: Buffer): Promise<void>;
  /** Copy exactly `size` bytes from `source`; a stream error fails the entry (and, for a tar, the archive). */
  stream(name: string, size: number, source: Readable): Promise<void>;
  /** Flush and make the result visible (rename a temp file into place). */
  finish(): Promise<void>;
  /** Drop what was written; `reason` is passed on to a caller's stream. */
  abort(reason: unknown): Promise<void>;
}

const FILE_MODE = 0o644;
const DIR_MODE = 0o755;

/** Open a tar sink writing to a path (temp file, renamed on finish) or a caller's stream (ended on finish). @internal */
export async function createTarSink(opts: { dest: string | Writable; mtime: Date }): Promise<ArchiveSink> {
  const tmp = typeof opts.dest === 'string' ? tempNameFor(opts.dest) : undefined;
  const out = tmp === undefined ? (opts.dest as Writable) : createWriteStream(tmp, { flags: 'wx', mode: FILE_MODE });
  const pack = tar.pack();
  const done = pipeline(packChunks(pack), out);
  // `failed` settles only on error; racing it keeps a dead output from hanging an entry forever.
  const failed = done.then(() => new Promise<never>(() => undefined));
  failed.catch(() => undefined);
  const header = (name: string, type: 'file' | 'directory', size: number): Partial<tar.Header> & { name: string } => ({
    name, type, size, mode: type === 'directory' ? DIR_MODE : FILE_MODE, uid: 0, gid: 0, mtime: opts.mtime,
  });

  const addEntry = (h: Partial<tar.Header> & { name: string }, data?: Buffer): Promise<void> => {
    const written = new Promise<void>((resolve, reject) => {
      const cb = (err?: Error | null): void => (err ? reject(err) : resolve());
      if (data) pack.entry(h, data, cb);
      else pack.entry(h, cb).end(Buffer.alloc(0));
    });
    return Promise.race([written, failed]);
  };

  async function stream(name: string, size: number, source: Readable): Promise<void> {
    let entryError: Error | null | undefined;
    const sink = pack.entry(header(name, 'file', size), (err) => {
      entryError = err;
    });
    const finished = new Promise<void>((resolve, reject) => {
      sink.on('close', () => resolve());
      sink.on('error', reject);
    });
    finished.catch(() => undefined);
    try {
      for await (const chunk of source) {
        if (!sink.write(chunk as Buffer)) await Promise.race([new Promise<void>((r) => sink.once('drain', () => r())), failed, finished]);
      }
      sink.end(Buffer.alloc(0));
      await Promise.race([finished, failed]);
      if (entryError) throw entryError;
    } catch (err) {
      source.destroy();
      pack.destroy(err as Error);
      throw err;
    }
  }

  return {
    exists: async () => false,
    directory: (name) => addEntry(header(`${name}/`, 'directory', 0)),
    file: (name, data) => addEntry(header(name, 'file', data.length), data),
    stream,
    async finish() {
      pack.finalize();
      await done;
      if (tmp !== undefined) await fsp.rename(tmp, opts.dest as string);
    },
    async abort(reason) {
      if (!pack.destroyed) pack.destroy(reason instanceof Error ? reason : new Error(String(reason)));
      await done.catch(() => undefined);
      if (tmp !== undefined) await fsp.rm(tmp, { force: true });
    },
  };
}

async function* packChunks(pack: tar.Pack): AsyncGenerator<Buffer> {
  for await (const chunk of pack) yield chunk as Buffer;
}

/** Open a folder sink; files are written to temp names and renamed, so a reader never sees half a blob. @internal */
export async function createDirSink(opts: { dir: string }): Promise<ArchiveSink> {
  const existed = await fsp.stat(opts.dir).then((s) => s.isDirectory(), () => false);
  await fsp.mkdir(opts.dir, { recursive: true });
  const temps = new Set<string>();
  const resolve = (name: string): string => path.join(opts.dir, ...name.split('/'));

  async function atomically(name: string, write: (tmp: string) => Promise<void>): Promise<void> {
    const target = resolve(name);
    const tmp = tempNameFor(target);
    temps.add(tmp);
    try {
      await write(tmp);
      await fsp.rename(tmp, target);
    } finally {
      await fsp.rm(tmp, { force: true }).catch(() => undefined);
      temps.delete(tmp);
    }
  }

  return {
    exists: (name) => fsp.stat(resolve(name)).then((s) => s.isFile(), () => false),
    directory: async (name) => void (await fsp.mkdir(resolve(name), { recursive: true, mode: DIR_MODE })),
    file: (name, data) => atomically(name, (tmp) => fsp.writeFile(tmp, data, { flag: 'wx', mode: FILE_MODE })),
    stream: (name, size, source) =>
      atomically(name, async (tmp) => {
        await pipeline(source, createWriteStream(tmp, { flags: 'wx', mode: FILE_MODE }));
        const got = (await fsp.stat(tmp)).size;
        if (got !== size) throw new Error(`${name}: wrote ${got} bytes, expected ${size}`);
      }),
    finish: async () => undefined,
    async abort() {
      for (const tmp of temps) await fsp.rm(tmp, { force: true });
      if (!existed) await fsp.rm(opts.dir, { recursive: true, force: true });
    },
  };
}

function tempNameFor(target: string): string {
  return path.join(path.dirname(target), `.${path.basename(target)}.${process.pid}-${randomBytes(6).toString('hex')}.tmp`);
}
