import { BuildError } from '../errors/index.js';
import { checkSegments, SparseMapReader, type Segment } from './sparse.js';
import { BLOCK, decodeBlock, isZeroBlock, parsePax, typeOf, type TarHeader } from './tar-format.js';

/**
 * Receives one entry's data (synchronously). `offset` is where the chunk goes in the file: always given for sparse
 * entries (the data skips the holes), otherwise the chunks simply follow each other.
 */
export interface EntrySink {
  data(chunk: Buffer, offset: number): void;
  end(): void;
}

/** A parsed entry. `size` is the number of data bytes that follow (0 for header-only types). */
export interface ParsedEntry extends TarHeader {
  /** The raw typeflag byte (useful when type is 'unknown'). */
  typeflag: number;
  /** PAX keys that were set for this entry, raw. */
  pax: ReadonlyMap<string, Buffer>;
  /**
   * A GNU sparse 1.0 file: its data segments [offset, length]; `size` is then the real size of the file, and the
   * sink receives only the segments' bytes, each with its offset. Everything outside them is a hole.
   */
  sparse?: readonly Segment[];
}

/** Types whose size field is ignored: no data follows their header (as Go's archive/tar reads them). */
const HEADER_ONLY = new Set(['link', 'symlink', 'character-device', 'block-device', 'directory', 'fifo']);
const MAX_META = 16 * 1024 * 1024;

function invalid(message: string, cause?: unknown): BuildError {
  return new BuildError('ERR_KILN_ARCHIVE_INVALID', message, { cause });
}

/**
 * A push parser for tar streams: feed it chunks, it calls `onEntry` for each entry and streams the entry's data to
 * the sink `onEntry` returns. Handles PAX ('x', 'g'), GNU long names ('L', 'K'), base-256 numbers. All callbacks
 * run synchronously inside `push`. @internal
 */
export class TarParser {
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  /** Bytes of entry data still to deliver, then padding to skip. */
  private dataLeft = 0;
  private padLeft = 0;
  private sink: EntrySink | null = null;
  /** Meta entry being collected ('x', 'g', 'L', 'K'). */
  private meta: { flag: number; size: number } | null = null;
  private pax = new Map<string, Buffer>();
  private globalPax = new Map<string, Buffer>();
  private longName: string | undefined;
  private longLink: string | undefined;
  private zeroBlocks = 0;
  private done = false;
  /** A sparse entry whose map is being read: its data bytes left, and the map so far. */
  private sparseHead: { entry: ParsedEntry; left: number; map: SparseMapReader } | null = null;
  /** Segments of the sparse entry being delivered, the current one's index, and the file offset reached in it. */
  private segs: readonly Segment[] | null = null;
  private segIdx = 0;
  private segDone = 0;
  /** File offset of the next data byte of a plain entry. */
  private filePos = 0;

  constructor(private readonly onEntry: (e: ParsedEntry) => EntrySink | null) {}

  /** True once the end-of-archive marker has been read. */
  get ended(): boolean {
    return this.done;
  }

  push(chunk: Buffer): void {
    let buf = chunk;
    while (buf.length > 0 && !this.done) {
      if (this.dataLeft > 0) {
        const n = Math.min(this.dataLeft, buf.length);
        if (this.sink) this.deliver(buf.subarray(0, n));
        this.dataLeft -= n;
        buf = buf.subarray(n);
        if (this.dataLeft === 0) this.finishEntry();
        continue;
      }
      if (this.padLeft > 0) {
        const n = Math.min(this.padLeft, buf.length);
        this.padLeft -= n;
        buf = buf.subarray(n);
        continue;
      }
      const need = this.meta ? this.meta.size : BLOCK;
      if (this.pendingBytes === 0 && buf.length >= need) {
        this.consume(buf.subarray(0, need));
        buf = buf.subarray(need);
        continue;
      }
      const n = Math.min(need - this.pendingBytes, buf.length);
      this.pending.push(buf.subarray(0, n));
      this.pendingBytes += n;
      buf = buf.subarray(n);
      if (this.pendingBytes === need) {
        const whole = Buffer.concat(this.pending, need);
        this.pending = [];
        this.pendingBytes = 0;
        this.consume(whole);
      }
    }
  }

  /** Hand data to the sink with its file offsets (split at segment ends for a sparse entry). */
  private deliver(chunk: Buffer): void {
    const sink = this.sink!;
    if (this.segs === null) {
      sink.data(chunk, this.filePos);
      this.filePos += chunk.length;
      return;
    }
    let c = chunk;
    while (c.length > 0) {
      const seg = this.segs[this.segIdx];
      const room = seg[1] - this.segDone;
      if (room === 0) {
        this.segIdx++;
        this.segDone = 0;
        continue;
      }
      const n = Math.min(room, c.length);
      sink.data(c.subarray(0, n), seg[0] + this.segDone);
      this.segDone += n;
      c = c.subarray(n);
    }
  }

  /** Call at end of input: throws when the archive was truncated. A missing end marker after whole entries is accepted. */
  end(): void {
    if (this.done) return;
    if (this.dataLeft > 0 || this.padLeft > 0 || this.pendingBytes > 0 || this.meta || this.sparseHead) {
      throw invalid('the layer archive is truncated');
    }
    this.done = true;
  }

  private finishEntry(): void {
    const s = this.sink;
    this.sink = null;
    this.padLeft = (BLOCK - (this.currentSize % BLOCK)) % BLOCK;
    this.segs = null;
    this.filePos = 0;
    s?.end();
  }

  private currentSize = 0;

  private consume(bytes: Buffer): void {
    if (this.sparseHead) {
      this.sparseBlock(bytes);
      return;
    }
    if (this.meta) {
      const { flag, size } = this.meta;
      this.meta = null;
      this.padLeft = (BLOCK - (size % BLOCK)) % BLOCK;
      this.applyMeta(flag, bytes);
      return;
    }
    this.header(bytes);
  }

  private applyMeta(flag: number, body: Buffer): void {
    try {
      if (flag === 0x78) for (const [k, v] of parsePax(body)) this.pax.set(k, v);
      else if (flag === 0x67) for (const [k, v] of parsePax(body)) this.globalPax.set(k, v);
      else {
        const end = body.indexOf(0);
        const s = body.subarray(0, end === -1 ? body.length : end).toString('utf8');
        if (flag === 0x4c) this.longName = s;
        else this.longLink = s;
      }
    } catch (err) {
      throw invalid(`the layer archive has a malformed extended header: ${(err as Error).message}`, err);
    }
  }

  private header(block: Buffer): void {
    if (isZeroBlock(block)) {
      this.zeroBlocks++;
      if (this.zeroBlocks >= 2) this.done = true;
      return;
    }
    if (this.zeroBlocks > 0) throw invalid('the layer archive has data after an end-of-archive block');
    let raw;
    try {
      raw = decodeBlock(block);
    } catch (err) {
      throw invalid('the layer is not a valid tar archive (bad header checksum; is it compressed with an unknown format?)', err);
    }
    if ([raw.mode, raw.uid, raw.gid, raw.size, raw.mtime].some((n) => Number.isNaN(n)) || raw.size < 0) {
      throw invalid(`the layer archive has a malformed header for ${JSON.stringify(raw.name)}`);
    }
    const flag = raw.typeflag;
    if (flag === 0x78 || flag === 0x67 || flag === 0x4c || flag === 0x4b) {
      if (raw.size > MAX_META) throw invalid('the layer archive has an extended header larger than 16 MiB');
      if (raw.size === 0) return;
      this.meta = { flag, size: raw.size };
      return;
    }
    const pax = new Map([...this.globalPax, ...this.pax]);
    this.pax = new Map();
    const str = (k: string): string | undefined => pax.get(k)?.toString('utf8');
    const num = (k: string, fallback: number): number => {
      const v = str(k);
      if (v === undefined) return fallback;
      const n = Math.floor(Number(v));
      if (!Number.isFinite(n)) throw invalid(`the layer archive has a malformed PAX ${k} for ${JSON.stringify(raw.name)}`);
      return n;
    };
    const type = typeOf(flag);
    const path = str('path') ?? this.longName ?? raw.name;
    const linkname = str('linkpath') ?? this.longLink ?? raw.linkname;
    this.longName = undefined;
    this.longLink = undefined;
    const xattrs: Array<[string, Buffer]> = [];
    for (const [k, v] of pax) {
      if (k.startsWith('SCHILY.xattr.')) xattrs.push([k.slice('SCHILY.xattr.'.length), v]);
      else if (k.startsWith('LIBARCHIVE.xattr.')) {
        xattrs.push([decodeURIComponent(k.slice('LIBARCHIVE.xattr.'.length)), Buffer.from(v.toString('latin1'), 'base64')]);
      }
    }
    const dataSize = num('size', raw.size);
    const entry: ParsedEntry = {
      path,
      type,
      typeflag: flag,
      mode: raw.mode & 0o7777,
      uid: num('uid', raw.uid),
      gid: num('gid', raw.gid),
      size: HEADER_ONLY.has(type) ? 0 : dataSize,
      mtime: num('mtime', raw.mtime),
      linkname: linkname || undefined,
      devmajor: raw.devmajor,
      devminor: raw.devminor,
      xattrs: xattrs.length > 0 ? xattrs : undefined,
      pax,
    };
    if (type === 'file' && str('GNU.sparse.major') === '1' && str('GNU.sparse.minor') === '0') {
      entry.path = str('GNU.sparse.name') ?? path;
      this.currentSize = entry.size;
      if (entry.size < BLOCK) throw invalid(`the layer archive's sparse entry ${JSON.stringify(entry.path)} has no map`);
      this.sparseHead = { entry, left: entry.size, map: new SparseMapReader() };
      return;
    }
    this.start(entry);
  }

  /** One block of a sparse entry's map; once the map is complete, the entry starts. */
  private sparseBlock(block: Buffer): void {
    const head = this.sparseHead!;
    head.left -= BLOCK;
    const name = JSON.stringify(head.entry.path);
    let segs: Segment[] | undefined;
    try {
      segs = head.map.push(block);
    } catch (err) {
      throw invalid(`the layer archive's sparse entry ${name} has a malformed map: ${(err as Error).message}`, err);
    }
    if (segs === undefined) {
      if (head.left < BLOCK) throw invalid(`the layer archive's sparse entry ${name} has a truncated map`);
      return;
    }
    this.sparseHead = null;
    const realSize = Math.floor(Number(head.entry.pax.get('GNU.sparse.realsize')?.toString('latin1') ?? 'NaN'));
    if (!Number.isSafeInteger(realSize) || realSize < 0) throw invalid(`the layer archive's sparse entry ${name} has no valid GNU.sparse.realsize`);
    const problem = checkSegments(segs, realSize, head.left);
    if (problem) throw invalid(`the layer archive's sparse entry ${name}: ${problem}`);
    this.start({ ...head.entry, size: realSize, sparse: segs }, head.left);
  }

  /** Hand the entry to onEntry; `stored` data bytes follow (the segments' bytes for a sparse entry). */
  private start(entry: ParsedEntry, stored = entry.size): void {
    this.segs = entry.sparse ?? null;
    this.segIdx = 0;
    this.segDone = 0;
    this.filePos = 0;
    this.sink = this.onEntry(entry);
    // the padding after the data: the map is whole blocks, so the stored bytes' remainder is the data's
    this.currentSize = stored;
    this.dataLeft = stored;
    if (stored === 0) this.finishEntry();
  }
}
