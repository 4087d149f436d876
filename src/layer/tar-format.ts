/**
 * Our own ustar/PAX header codec. tar-stream 3 cannot carry binary PAX values (it decodes and encodes PAX as
 * UTF-8 text, which corrupts `security.capability`) and truncates uid/gid above 262143, so layers are written and
 * read with this small codec instead. Output is deterministic: uname/gname empty, PAX records sorted by key.
 * @internal
 */

export const BLOCK = 512;

/** Entry types by their names in {@link TarEntryInfo.type}. */
export type TarType =
  | 'file'
  | 'link'
  | 'symlink'
  | 'character-device'
  | 'block-device'
  | 'directory'
  | 'fifo'
  | 'unknown';

const TYPEFLAG: Record<Exclude<TarType, 'unknown'>, number> = {
  file: 0x30,
  link: 0x31,
  symlink: 0x32,
  'character-device': 0x33,
  'block-device': 0x34,
  directory: 0x35,
  fifo: 0x36,
};

/** One entry's metadata as written to or read from a tar. Paths are relative, directories end with '/'. */
export interface TarHeader {
  path: string;
  type: TarType;
  mode: number;
  uid: number;
  gid: number;
  /** Bytes of data that follow the header (0 for every type but 'file'). */
  size: number;
  /** Seconds since the epoch (integer). */
  mtime: number;
  linkname?: string;
  devmajor?: number;
  devminor?: number;
  /** Extended attributes, raw bytes. */
  xattrs?: ReadonlyArray<readonly [string, Buffer]>;
  /** Further PAX records to write (the GNU sparse 1.0 keys of a sparse file). */
  extraPax?: ReadonlyArray<readonly [string, string]>;
}

const MAX_OCTAL_7 = 0o7777777;
const MAX_OCTAL_11 = 0o77777777777;
const ZERO_BLOCK = Buffer.alloc(BLOCK);
/** Two zero blocks end an archive. */
export const END_OF_ARCHIVE: Buffer = Buffer.alloc(BLOCK * 2);

/** Zero bytes that pad `size` up to a whole block. */
export function padding(size: number): Buffer {
  const rem = size % BLOCK;
  return rem === 0 ? ZERO_BLOCK.subarray(0, 0) : ZERO_BLOCK.subarray(0, BLOCK - rem);
}

function isAscii(s: string): boolean {
  for (let i = 0; i < s.length; i++) if (s.charCodeAt(i) > 0x7e || s.charCodeAt(i) < 0x20) return false;
  return true;
}

/** Split an ASCII path into ustar prefix (≤155) and name (≤100), or undefined when it cannot be split. */
function splitUstarPath(p: string): { prefix: string; name: string } | undefined {
  if (p.length <= 100) return { prefix: '', name: p };
  // Search slashes from the left, skipping a trailing one: the first whose tail fits gives the longest name.
  const last = p.endsWith('/') ? p.length - 1 : p.length;
  for (let i = p.indexOf('/'); i !== -1 && i < last; i = p.indexOf('/', i + 1)) {
    if (p.length - i - 1 <= 100) return i <= 155 && i > 0 ? { prefix: p.slice(0, i), name: p.slice(i + 1) } : undefined;
  }
  return undefined;
}

function writeOctal(buf: Buffer, off: number, width: number, value: number): void {
  let v = Math.trunc(value);
  buf[off + width - 1] = 0;
  for (let i = off + width - 2; i >= off; i--) {
    buf[i] = 0x30 + (v % 8);
    v = Math.floor(v / 8);
  }
}

function writeBase256(buf: Buffer, off: number, width: number, value: number): void {
  buf[off] = 0x80;
  let v = value;
  for (let i = width - 1; i > 0; i--) {
    buf[off + i] = v % 256;
    v = Math.floor(v / 256);
  }
}

function writeNumber(buf: Buffer, off: number, width: number, value: number): void {
  const max = width === 8 ? MAX_OCTAL_7 : MAX_OCTAL_11;
  if (value >= 0 && value <= max) writeOctal(buf, off, width, value);
  else writeBase256(buf, off, width, value);
}

function checksum(block: Buffer): number {
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 0x20 : block[i];
  return sum;
}

/** One PAX record, `"%d %s=%s\n"`, where the length counts the whole record. Values are raw bytes. */
export function paxRecord(key: string, value: Buffer | string): Buffer {
  const v = typeof value === 'string' ? Buffer.from(value, 'utf8') : value;
  const body = Buffer.byteLength(key, 'utf8') + v.length + 3; // ' ' '=' '\n'
  let len = body + String(body).length;
  if (String(len).length !== String(body).length) len = body + String(len).length;
  return Buffer.concat([Buffer.from(`${len} ${key}=`, 'utf8'), v, Buffer.from('\n')]);
}

/** The fields of one ustar block, ready to be written. */
export interface UstarFields {
  name: string;
  prefix: string;
  typeflag: number;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  mtime: number;
  linkname: string;
  devmajor: number;
  devminor: number;
}

function ustarBlock(h: UstarFields): Buffer {
  const b = Buffer.allocUnsafe(BLOCK);
  ustarInto(b, 0, h);
  return b;
}

/** Write one ustar header block at `b[o..o+512)`. */
export function ustarInto(buf: Buffer, o: number, h: UstarFields): void {
  const b = buf.subarray(o, o + BLOCK);
  b.fill(0);
  b.write(h.name, 0, 100, 'utf8');
  writeOctal(b, 100, 8, h.mode & 0o7777);
  writeOctal(b, 108, 8, h.uid);
  writeOctal(b, 116, 8, h.gid);
  writeOctal(b, 124, 12, h.size);
  writeOctal(b, 136, 12, h.mtime);
  b[156] = h.typeflag;
  b.write(h.linkname, 157, 100, 'utf8');
  b.write('ustar\u000000', 257, 8, 'ascii');
  writeNumber(b, 329, 8, h.devmajor);
  writeNumber(b, 337, 8, h.devminor);
  b.write(h.prefix, 345, 155, 'utf8');
  const sum = checksum(b);
  b.write(sum.toString(8).padStart(6, '0'), 148, 6, 'ascii');
  b[154] = 0;
  b[155] = 0x20;
}

/** A header split in two: the PAX extended header (when one is needed) and the ustar block's fields. */
export interface PreparedHeader {
  /** PAX header block + records + padding, or undefined. */
  pax: Buffer | undefined;
  ustar: UstarFields;
}

/**
 * Prepare the header of one entry: a PAX extended header when needed (long or non-ASCII names, big ids, sizes or
 * times, xattrs), then the ustar block's fields. Data and its padding are the caller's.
 */
export function prepareHeader(h: TarHeader): PreparedHeader {
  if (h.type === 'unknown') throw new Error(`cannot encode tar entry of unknown type: ${h.path}`);
  let records: Map<string, Buffer | string> | undefined;
  const set = (k: string, v: Buffer | string): void => {
    (records ??= new Map()).set(k, v);
  };

  let name = h.path;
  let prefix = '';
  const split = isAscii(h.path) ? splitUstarPath(h.path) : undefined;
  if (split) ({ name, prefix } = split);
  else {
    set('path', h.path);
    name = '';
  }
  let linkname = h.linkname ?? '';
  if (linkname && (!isAscii(linkname) || linkname.length > 100)) {
    set('linkpath', linkname);
    linkname = '';
  }
  const big = (key: string, v: number, max: number): number => {
    if (v >= 0 && v <= max && Number.isInteger(v)) return v;
    set(key, String(v));
    return 0;
  };
  const uid = big('uid', h.uid, MAX_OCTAL_7);
  const gid = big('gid', h.gid, MAX_OCTAL_7);
  const size = big('size', h.size, MAX_OCTAL_11);
  const mtime = big('mtime', h.mtime, MAX_OCTAL_11);
  if (h.xattrs) for (const [k, v] of h.xattrs) set(`SCHILY.xattr.${k}`, v);
  if (h.extraPax) for (const [k, v] of h.extraPax) set(k, v);

  let pax: Buffer | undefined;
  if (records !== undefined) {
    const recs = records;
    const keys = [...recs.keys()].sort();
    const body = Buffer.concat(keys.map((k) => paxRecord(k, recs.get(k) as Buffer | string)));
    pax = Buffer.concat([
      ustarBlock({
        name: 'PaxHeader', prefix: '', typeflag: 0x78 /* x */, mode: 0o644, uid: 0, gid: 0, size: body.length,
        mtime: 0, linkname: '', devmajor: 0, devminor: 0,
      }),
      body,
      padding(body.length),
    ]);
  }
  const ustar: UstarFields = {
    name, prefix, typeflag: TYPEFLAG[h.type], mode: h.mode, uid, gid, size, mtime, linkname,
    devmajor: h.devmajor ?? 0, devminor: h.devminor ?? 0,
  };
  return { pax, ustar };
}

/** Encode the header block(s) of one entry as one buffer (PAX header first when needed). */
export function encodeHeader(h: TarHeader): Buffer {
  const { pax, ustar } = prepareHeader(h);
  const block = ustarBlock(ustar);
  return pax ? Buffer.concat([pax, block]) : block;
}

// ---------------------------------------------------------------------------------------------------------------
// Decoding

/** A header block as found in the archive, before PAX / GNU long-name records are applied. */
export interface RawHeader {
  name: string;
  typeflag: number;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  mtime: number;
  linkname: string;
  devmajor: number;
  devminor: number;
}

function cString(buf: Buffer, off: number, len: number): Buffer {
  const end = buf.indexOf(0, off);
  return buf.subarray(off, end === -1 || end > off + len ? off + len : end);
}

/** Parse a numeric field: octal (space/NUL padded) or GNU base-256. NaN when malformed. */
export function parseNumber(buf: Buffer, off: number, len: number): number {
  const first = buf[off];
  if (first & 0x80) {
    const negative = first === 0xff;
    let v = negative ? 0xff - (first & 0x7f) - 0x80 : first & 0x7f;
    for (let i = 1; i < len; i++) v = v * 256 + (negative ? 0xff - buf[off + i] : buf[off + i]);
    return negative ? -(v + 1) : v;
  }
  let s = cString(buf, off, len).toString('latin1').trim();
  if (s === '') return 0;
  s = s.replace(/\s+$/, '');
  return /^[0-7]+$/.test(s) ? parseInt(s, 8) : NaN;
}

/** True when the block is all zeros (end-of-archive marker). */
export function isZeroBlock(block: Buffer): boolean {
  for (let i = 0; i < BLOCK; i++) if (block[i] !== 0) return false;
  return true;
}

/** Decode one ustar/GNU/v7 header block; throws a plain Error on a bad checksum (caller wraps it). */
export function decodeBlock(b: Buffer): RawHeader {
  const stored = parseNumber(b, 148, 8);
  const unsigned = checksum(b);
  let signed = 0;
  for (let i = 0; i < BLOCK; i++) signed += i >= 148 && i < 156 ? 0x20 : (b[i] << 24) >> 24;
  if (stored !== unsigned && stored !== signed) throw new Error('invalid tar header checksum');
  const magic = b.toString('latin1', 257, 263);
  let name = cString(b, 0, 100).toString('utf8');
  if (magic === 'ustar\u0000' && b[345] !== 0) name = `${cString(b, 345, 155).toString('utf8')}/${name}`;
  return {
    name,
    typeflag: b[156],
    mode: parseNumber(b, 100, 8),
    uid: parseNumber(b, 108, 8),
    gid: parseNumber(b, 116, 8),
    size: parseNumber(b, 124, 12),
    mtime: parseNumber(b, 136, 12),
    linkname: cString(b, 157, 100).toString('utf8'),
    devmajor: parseNumber(b, 329, 8),
    devminor: parseNumber(b, 337, 8),
  };
}

/** Parse PAX records into key → raw value bytes (binary-safe). Throws on a malformed record. */
export function parsePax(buf: Buffer): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  let off = 0;
  while (off < buf.length) {
    if (buf[off] === 0) break; // trailing NUL padding
    const sp = buf.indexOf(0x20, off);
    if (sp === -1) throw new Error('malformed PAX record');
    const len = Number(buf.toString('latin1', off, sp));
    if (!Number.isInteger(len) || len <= sp - off + 1 || off + len > buf.length || buf[off + len - 1] !== 0x0a) {
      throw new Error('malformed PAX record');
    }
    const rec = buf.subarray(sp + 1, off + len - 1);
    const eq = rec.indexOf(0x3d);
    if (eq === -1) throw new Error('malformed PAX record');
    out.set(rec.toString('utf8', 0, eq), rec.subarray(eq + 1));
    off += len;
  }
  return out;
}

/** Map a typeflag byte to a type name. Regular-file variants ('\0', '7') become 'file'. */
export function typeOf(flag: number): TarType {
  switch (flag) {
    case 0:
    case 0x30:
    case 0x37:
      return 'file';
    case 0x31:
      return 'link';
    case 0x32:
      return 'symlink';
    case 0x33:
      return 'character-device';
    case 0x34:
      return 'block-device';
    case 0x35:
      return 'directory';
    case 0x36:
      return 'fifo';
    default:
      return 'unknown';
  }
}
