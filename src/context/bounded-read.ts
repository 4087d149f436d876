import { constants, promises as fsp, type Stats } from 'node:fs';
import { BuildError } from '../errors/index.js';

/** Largest Dockerfile kiln reads (BuildKit's frontend has no smaller one; 55,000 ENV lines are about 1 MiB). */
export const MAX_DOCKERFILE_BYTES = 16 * 1024 * 1024;
/** Largest .dockerignore kiln reads. */
export const MAX_IGNORE_FILE_BYTES = 4 * 1024 * 1024;

function kindOf(st: Stats): string {
  if (st.isDirectory()) return 'a directory';
  if (st.isFIFO()) return 'a FIFO (named pipe)';
  if (st.isCharacterDevice()) return 'a character device';
  if (st.isBlockDevice()) return 'a block device';
  if (st.isSocket()) return 'a socket';
  return 'not a regular file';
}

/**
 * Read a small text input (a Dockerfile, a .dockerignore) that must be a regular file of at most `maxBytes`.
 * A FIFO, a device (`-f /dev/zero`) or a directory is refused at once, before any read could block or grow
 * without end; the file is opened non-blocking and checked again on the open descriptor (a swap between the
 * two checks is refused too), and never more than `maxBytes + 1` bytes are read.
 * Returns null when the file does not exist (`ENOENT`/`ENOTDIR`).
 *
 * @example
 * const text = await readBoundedText({ file: 'Dockerfile', what: 'Dockerfile', maxBytes: MAX_DOCKERFILE_BYTES });
 */
export async function readBoundedText(opts: { file: string; what: string; maxBytes: number }): Promise<string | null> {
  const { file, what, maxBytes } = opts;
  const refuse = (st: Stats): never => {
    throw new BuildError('ERR_KILN_INPUT_NOT_FILE', `${what} "${file}" is ${kindOf(st)}, not a regular file`, { details: { file } });
  };
  const tooLarge = (size: number): never => {
    throw new BuildError('ERR_KILN_INPUT_TOO_LARGE', `${what} "${file}" is larger than the limit of ${maxBytes} bytes${size > maxBytes ? ` (${size} bytes)` : ''}`, { details: { file, limit: maxBytes } });
  };
  let st: Stats;
  try {
    st = await fsp.stat(file);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return null;
    throw new BuildError('ERR_KILN_CONTEXT_UNREADABLE', `cannot read ${what} "${file}": ${(err as Error).message}`, { cause: err, details: { file } });
  }
  if (!st.isFile()) refuse(st);
  if (st.size > maxBytes) tooLarge(st.size);
  let fh: fsp.FileHandle;
  try {
    fh = await fsp.open(file, constants.O_RDONLY | constants.O_NONBLOCK | constants.O_NOCTTY);
  } catch (err) {
    throw new BuildError('ERR_KILN_CONTEXT_UNREADABLE', `cannot read ${what} "${file}": ${(err as Error).message}`, { cause: err, details: { file } });
  }
  try {
    const fst = await fh.stat();
    if (!fst.isFile()) refuse(fst);
    const chunks: Buffer[] = [];
    let n = 0;
    for (;;) {
      const buf = Buffer.alloc(Math.min(Math.max(fst.size - n, 0) + 1, maxBytes + 1 - n, 1 << 20) || 1);
      const { bytesRead } = await fh.read(buf, 0, buf.length, n);
      if (bytesRead === 0) break;
      chunks.push(buf.subarray(0, bytesRead));
      n += bytesRead;
      if (n > maxBytes) tooLarge(n);
    }
    return Buffer.concat(chunks, n).toString('utf8');
  } finally {
    await fh.close();
  }
}
