/**
 * Extended attributes through Debian's `attr` tools, one process per tree (not per file).
 *
 * Node has no xattr API. We read a whole tree's xattrs with one `getfattr -R -P -h -d -m - -e hex` and write a
 * layer's with one `setfattr -h --restore`. Both use the l*xattr calls (never follow symlinks), encode values in
 * hex (binary-safe) and escape odd bytes in paths as `\ooo`. The cost per file is one llistxattr in C, in a child
 * process that runs beside our own walk. fs-xattr (the native alternative) builds here but calls getxattr and
 * setxattr, which follow symlinks, and adds a node-gyp build to every install.
 * @internal
 */
import { execFile, spawn } from 'node:child_process';
import { promises as fsp } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { BuildError } from '../errors/index.js';

/** Absolute path → list of [name, value]. */
export type XattrMap = Map<string, Array<[string, Buffer]>>;

function toolMissing(tool: string, cause: unknown): BuildError {
  return new BuildError('ERR_KILN_LAYER_TOOL_MISSING', `${tool} is not installed; kiln needs it to read and write extended attributes`, {
    cause,
    hint: "install Debian's attr package: apt-get install -y attr",
  });
}

/** Undo attr's path quoting: `\ooo` octal escapes of single bytes; bytes are UTF-8. */
export function unquotePath(raw: Buffer): string {
  const out: number[] = [];
  for (let i = 0; i < raw.length; i++) {
    const c = raw[i];
    if (c === 0x5c && isOct(raw[i + 1]) && isOct(raw[i + 2]) && isOct(raw[i + 3])) {
      out.push(((raw[i + 1] - 0x30) << 6) | ((raw[i + 2] - 0x30) << 3) | (raw[i + 3] - 0x30));
      i += 3;
    } else out.push(c);
  }
  return Buffer.from(out).toString('utf8');
}

function isOct(c: number | undefined): boolean {
  return c !== undefined && c >= 0x30 && c <= 0x37;
}

/** Quote a path for `setfattr --restore`: every byte outside printable ASCII, and backslash, becomes `\ooo`. */
export function quotePath(p: string): string {
  let s = '';
  for (const c of Buffer.from(p, 'utf8')) {
    if (c > 0x20 && c < 0x7f && c !== 0x5c) s += String.fromCharCode(c);
    else s += `\\${c.toString(8).padStart(3, '0')}`;
  }
  return s;
}

/** Parse getfattr's dump (`# file: P` then `name=0xHEX` lines, blank line between files). */
export function parseDump(out: Buffer): XattrMap {
  const map: XattrMap = new Map();
  let current: Array<[string, Buffer]> | undefined;
  let start = 0;
  while (start < out.length) {
    let end = out.indexOf(0x0a, start);
    if (end === -1) end = out.length;
    const line = out.subarray(start, end);
    start = end + 1;
    if (line.length === 0) {
      current = undefined;
      continue;
    }
    if (line.subarray(0, 8).toString('latin1') === '# file: ') {
      current = [];
      map.set(unquotePath(line.subarray(8)), current);
      continue;
    }
    const eq = line.indexOf(0x3d);
    if (!current || eq === -1) continue;
    const name = line.toString('utf8', 0, eq);
    const value = line.toString('latin1', eq + 1);
    current.push([name, decodeValue(value)]);
  }
  return map;
}

function decodeValue(v: string): Buffer {
  if (v.startsWith('0x')) return Buffer.from(v.slice(2), 'hex');
  if (v.startsWith('0s')) return Buffer.from(v.slice(2), 'base64');
  if (v.startsWith('"') && v.endsWith('"')) return Buffer.from(v.slice(1, -1), 'utf8');
  return Buffer.from(v, 'utf8');
}

/**
 * Every xattr under `dir` (including `dir` itself), keyed by absolute path. Files without xattrs are absent.
 * Runs as a child process; start it early and await it when the values are needed.
 */
export function readTreeXattrs(dir: string, signal?: AbortSignal): Promise<XattrMap> {
  return new Promise((resolve, reject) => {
    execFile(
      'getfattr',
      ['--absolute-names', '-R', '-P', '-h', '-d', '-m', '-', '-e', 'hex', '--', path.resolve(dir)],
      { encoding: 'buffer', maxBuffer: 1 << 30, signal },
      (err, stdout, stderr) => {
        if (err) {
          if ((err as NodeJS.ErrnoException).code === 'ENOENT') return reject(toolMissing('getfattr', err));
          if ((err as { name?: string }).name === 'AbortError') return reject(signal?.reason ?? err);
          return reject(
            new BuildError('ERR_KILN_INTERNAL', `reading extended attributes under ${dir} failed: ${stderr.toString().trim()}`, { cause: err }),
          );
        }
        resolve(parseDump(stdout));
      },
    );
  });
}

/** A failure to set one attribute, as setfattr reported it. */
export interface XattrFailure {
  line: string;
}

/**
 * Set xattrs on many files with one `setfattr -h --restore`. Paths must be absolute. "Operation not supported"
 * failures (a file system without that namespace) are returned; any other failure throws.
 */
export async function restoreXattrs(
  items: ReadonlyArray<{ path: string; attrs: ReadonlyArray<readonly [string, Buffer]> }>,
  signal?: AbortSignal,
): Promise<XattrFailure[]> {
  if (items.length === 0) return [];
  const parts: string[] = [];
  for (const it of items) {
    if (it.attrs.length === 0) continue;
    parts.push(`# file: ${quotePath(it.path)}\n`);
    for (const [name, value] of it.attrs) parts.push(`${name}=0x${value.toString('hex')}\n`);
    parts.push('\n');
  }
  const file = path.join(os.tmpdir(), `kiln-xattrs-${process.pid}-${randomBytes(6).toString('hex')}`);
  await fsp.writeFile(file, parts.join(''), { mode: 0o600 });
  try {
    const { code, stderr } = await run('setfattr', ['-h', `--restore=${file}`], signal);
    if (code === 0) return [];
    const lines = stderr.split('\n').filter((l) => l.trim() !== '');
    const unsupported = lines.filter((l) => /Operation not supported/.test(l));
    if (unsupported.length === lines.length && lines.length > 0) return unsupported.map((line) => ({ line }));
    throw new BuildError('ERR_KILN_INTERNAL', `setting extended attributes failed: ${lines.slice(0, 3).join('; ')}`);
  } finally {
    await fsp.rm(file, { force: true });
  }
}

function run(cmd: string, args: string[], signal?: AbortSignal): Promise<{ code: number; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'], signal });
    let stderr = '';
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (d: string) => {
      if (stderr.length < 65536) stderr += d;
    });
    child.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') reject(toolMissing(cmd, err));
      else if (err.name === 'AbortError') reject(signal?.reason ?? err);
      else reject(err);
    });
    child.on('close', (code) => resolve({ code: code ?? 1, stderr }));
  });
}
