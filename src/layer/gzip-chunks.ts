/**
 * Gzip as a series of members (RFC 1952 allows concatenation; Go's gzip reader, GNU gzip and zlib read them as one
 * stream), each member cached by the sha256 of its uncompressed bytes. A layer that shares most of its tar with an
 * earlier one (a COPY rerun after a one-file edit) reuses the earlier members instead of compressing again.
 * Members are compressed on the thread pool, a few at a time, and written in order.
 * @internal
 */
import { createHash, type Hash } from 'node:crypto';
import { once } from 'node:events';
import fs from 'node:fs';
import path from 'node:path';
import type { Writable } from 'node:stream';
import { promisify } from 'node:util';
import zlib from 'node:zlib';

const gzip = promisify(zlib.gzip);
/** a member ends at the first cut point after this many uncompressed bytes */
export const MEMBER_BYTES = 1 << 20;
const IN_FLIGHT = 4;
/** default bound of the member cache */
export const DEFAULT_CHUNK_CACHE_BYTES = 256 * 1024 * 1024;

function newMemberHash(): Hash {
  return createHash('sha256');
}

/** Where compressed members are kept between layers. */
export interface ChunkCacheOptions {
  dir: string;
  /** evict least recently used members beyond this many bytes (default 256 MiB) */
  maxBytes?: number;
}

/** Writes uncompressed bytes as cached gzip members into `dest`. */
export class ChunkedGzip {
  private parts: Buffer[] = [];
  private hash = newMemberHash();
  /** uncompressed bytes in the member being filled */
  size = 0;
  /** write steps of members not yet written, oldest first */
  private readonly pending: Array<Promise<void>> = [];
  private writing: Promise<void> = Promise.resolve();
  private added = 0;
  private failed: Error | undefined;
  readonly done: Promise<void>;
  private resolveDone!: () => void;
  private rejectDone!: (e: Error) => void;

  constructor(
    private readonly dest: Writable,
    private readonly level: number,
    /** where members are cached; undefined: members are only compressed in parallel, never kept */
    private readonly cache: ChunkCacheOptions | undefined,
  ) {
    if (cache) fs.mkdirSync(cache.dir, { recursive: true });
    this.done = new Promise<void>((res, rej) => {
      this.resolveDone = res;
      this.rejectDone = rej;
    });
    this.done.catch(() => undefined);
    dest.on('error', (e) => this.fail(e));
  }

  /** Append bytes to the current member (kept by reference: the caller must not reuse `buf`). */
  write(buf: Buffer): void {
    this.parts.push(buf);
    this.size += buf.length;
    this.hash.update(buf);
  }

  /** True when too many members wait to be written (call {@link drain}). */
  get blocked(): boolean {
    return this.pending.length >= IN_FLIGHT;
  }

  /** End the current member here (a cut point). */
  cut(): void {
    if (this.size === 0) return;
    const key = this.hash.update(`\0gzip-${this.level}`).digest('hex');
    const parts = this.parts;
    const size = this.size;
    this.parts = [];
    this.size = 0;
    this.hash = newMemberHash();
    const member = this.member(key, size, () => (parts.length === 1 ? parts[0]! : Buffer.concat(parts, size)));
    member.catch(() => undefined);
    const step = this.writing.then(async () => {
      const gz = await member;
      if (!this.dest.write(gz)) await once(this.dest, 'drain');
    });
    this.writing = step;
    this.pending.push(step);
    step.then(
      () => void this.pending.shift(),
      (e: Error) => this.fail(e),
    );
  }

  /** Wait until fewer members are in flight. */
  async drain(): Promise<void> {
    while (this.blocked && !this.failed) await Promise.race([this.pending[0], this.done]);
    if (this.failed) throw this.failed;
  }

  /** Cut the last member, write everything, end `dest`, and resolve {@link done} when it has finished. */
  async end(): Promise<void> {
    this.cut();
    try {
      await this.writing;
      this.dest.end();
      await once(this.dest, 'finish');
      this.resolveDone();
    } catch (e) {
      this.fail(e as Error);
    }
    await this.done;
    this.prune();
  }

  destroy(err: Error): void {
    this.fail(err);
    this.dest.destroy(err);
  }

  private fail(e: Error): void {
    if (this.failed) return;
    this.failed = e;
    this.rejectDone(e);
  }

  /** The compressed member for `data`: from the cache, or compressed now and stored. */
  private async member(key: string, size: number, data: () => Buffer): Promise<Buffer> {
    if (!this.cache) return gzip(data(), { level: this.level });
    const file = path.join(this.cache.dir, `${key}.gz`);
    try {
      const cached = await fs.promises.readFile(file);
      // the gzip trailer ends with the uncompressed size: a cheap check against a truncated or foreign file
      if (cached.length < 18 || cached.readUInt32LE(cached.length - 4) !== size % 2 ** 32) throw new Error('bad member');
      const now = new Date();
      fs.utimes(file, now, now, () => undefined);
      return cached;
    } catch {
      // not cached
    }
    const gz = await gzip(data(), { level: this.level });
    const tmp = `${file}.${process.pid}.${Math.random().toString(36).slice(2)}.tmp`;
    try {
      await fs.promises.writeFile(tmp, gz);
      await fs.promises.rename(tmp, file);
      this.added += gz.length;
    } catch {
      await fs.promises.rm(tmp, { force: true });
    }
    return gz;
  }

  /** Keep the cache under its bound, dropping the least recently used members. */
  private prune(): void {
    if (this.added === 0 || !this.cache) return;
    const max = this.cache.maxBytes ?? DEFAULT_CHUNK_CACHE_BYTES;
    try {
      const dir = this.cache.dir;
      const entries = fs
        .readdirSync(dir)
        .filter((n) => n.endsWith('.gz'))
        .map((n) => {
          const st = fs.statSync(path.join(dir, n), { throwIfNoEntry: false });
          return { n, size: st?.size ?? 0, used: st?.mtimeMs ?? 0 };
        });
      let total = entries.reduce((a, e) => a + e.size, 0);
      if (total <= max) return;
      entries.sort((a, b) => a.used - b.used);
      for (const e of entries) {
        if (total <= max) break;
        fs.rmSync(path.join(dir, e.n), { force: true });
        total -= e.size;
      }
    } catch {
      // a cache: failing to prune is not an error
    }
  }
}
