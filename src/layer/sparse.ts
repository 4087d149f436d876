/**
 * Sparse files in layers: the GNU sparse format 1.0 inside PAX (what GNU tar writes with `--sparse
 * --sparse-version=1.0`, and what Go's archive/tar, GNU tar and libarchive read). The entry's data starts with a
 * decimal map (`count\n` then `offset\nlength\n` per data segment, padded to a block), followed by the bytes of
 * the data segments one after another; the holes are not stored.
 * @internal
 */
import fs from 'node:fs';
import type { Extent } from '../sparse/index.js';
import { BLOCK } from './tar-format.js';

/** A run of data in a sparse file: [offset, length]. */
export type Segment = readonly [number, number];

/** Holes are found at this granularity (the file systems' block size here). */
export const HOLE_BLOCK = 4096;
const SCAN = 1 << 20;
const ZERO = Buffer.alloc(SCAN);
/** Map texts above this are refused when reading (about 2.5 million segments). */
const MAX_MAP_BYTES = 64 * 1024 * 1024;


/**
 * The data segments of a file: every run of HOLE_BLOCK-sized blocks that are not all zeros. Only the file system's
 * data extents are read (holes are zeros by definition); zero blocks inside them become holes too, so the map depends
 * only on the bytes, not on how the file happens to be allocated. Yields to the event loop every 64 MiB.
 */
export async function scanSegments(fd: number, extents: readonly Extent[], signal?: AbortSignal): Promise<Segment[]> {
  const segs: Array<[number, number]> = [];
  const buf = Buffer.allocUnsafe(SCAN);
  let chunks = 0;
  const data = (off: number, len: number): void => {
    const last = segs[segs.length - 1];
    if (last !== undefined && last[0] + last[1] === off) last[1] += len;
    else segs.push([off, len]);
  };
  let done = 0;
  for (const [start, length] of extents) {
    // whole blocks: an extent that starts inside a block is read from the block's start (once)
    const to = start + length;
    let pos = Math.max(start - (start % HOLE_BLOCK), done);
    done = Math.max(done, to);
    while (pos < to) {
      const want = Math.min(SCAN, to - pos);
      let got = 0;
      while (got < want) {
        const n = fs.readSync(fd, buf, got, want - got, pos + got);
        if (n === 0) break;
        got += n;
      }
      if (got < want) throw new Error('file shrank while it was being read');
      if (!(got === SCAN && buf.equals(ZERO))) {
        for (let o = 0; o < got; o += HOLE_BLOCK) {
          const end = Math.min(o + HOLE_BLOCK, got);
          if (buf.compare(ZERO, 0, end - o, o, end) !== 0) data(pos + o, end - o);
        }
      }
      pos += got;
      if (++chunks % 64 === 0) {
        signal?.throwIfAborted();
        await new Promise<void>((r) => setImmediate(r));
      }
    }
  }
  return segs;
}

/** The map text of GNU sparse 1.0, padded to a block. A file that ends in a hole gets a last (size, 0) entry. */
export function encodeSparseMap(segs: readonly Segment[], size: number): Buffer {
  const all = [...segs];
  const last = all[all.length - 1];
  if (last === undefined || last[0] + last[1] < size) all.push([size, 0]);
  const text = `${all.length}\n${all.map(([o, l]) => `${o}\n${l}\n`).join('')}`;
  const len = Math.ceil(text.length / BLOCK) * BLOCK;
  const out = Buffer.alloc(len);
  out.write(text, 0, 'latin1');
  return out;
}

/** Decoding state of a sparse 1.0 map read block by block. */
export class SparseMapReader {
  private text = '';
  /** Bytes of map consumed (a multiple of BLOCK). */
  bytes = 0;

  /**
   * Feed one block. Returns the segments once the map is complete, else undefined. Throws a plain Error when the
   * map is malformed.
   */
  push(block: Buffer): Segment[] | undefined {
    this.bytes += block.length;
    if (this.bytes > MAX_MAP_BYTES) throw new Error('sparse map larger than 64 MiB');
    this.text += block.toString('latin1');
    const lines = this.text.split('\n');
    const count = lines.length > 1 ? parseDecimal(lines[0]) : undefined;
    if (count === undefined) {
      if (lines.length > 1) throw new Error('malformed sparse map');
      return undefined;
    }
    if (lines.length - 1 < 1 + 2 * count) return undefined;
    const segs: Array<[number, number]> = [];
    for (let i = 0; i < count; i++) {
      const o = parseDecimal(lines[1 + 2 * i]);
      const l = parseDecimal(lines[2 + 2 * i]);
      if (o === undefined || l === undefined) throw new Error('malformed sparse map');
      segs.push([o, l]);
    }
    return segs;
  }
}

function parseDecimal(s: string | undefined): number | undefined {
  if (s === undefined || !/^[0-9]{1,16}$/.test(s)) return undefined;
  const n = Number(s);
  return Number.isSafeInteger(n) ? n : undefined;
}

/** Check a map against the real size and the stored data bytes: sorted, not overlapping, inside the file. */
export function checkSegments(segs: readonly Segment[], realSize: number, dataBytes: number): string | undefined {
  let end = 0;
  let sum = 0;
  for (const [o, l] of segs) {
    if (o < end) return 'sparse map entries overlap or are out of order';
    if (o + l > realSize) return 'sparse map entry past the end of the file';
    end = o + l;
    sum += l;
  }
  return sum === dataBytes ? undefined : `sparse map describes ${sum} bytes, but ${dataBytes} are stored`;
}

