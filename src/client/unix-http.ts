import net from 'node:net';
import { BuildError } from '../errors/index.js';
import type { AnswerBody } from './response.js';

/*
 * One HTTP/1.1 request per connection over a unix socket, for the local hand-off (ROOT/kiln.sock): the lean CLI's
 * whole job on a warm build. node:http does the same in ~8 ms more of a short-lived client's start (loading it, and
 * its first request setting up an agent), measured on a cached build handed to `kiln serve`; this needs node:net
 * only. It sends `Connection: close` and reads the answer's body as the server framed it: chunked, a
 * Content-Length, or up to the end of the connection.
 */

/** The server closed the connection (or failed) before the head of an answer: it took nothing the caller can see. */
export class NoAnswerError extends Error {
  override name = 'NoAnswerError';
}

export interface SocketAnswer extends AnswerBody {
  headers: Record<string, string>;
}

/**
 * A connection to the server on `socketPath`, or undefined when none answers (no such file, or a socket left by a
 * killed server): connecting is the whole "is it there" check, so nothing is sent twice.
 */
export function connectUnix(socketPath: string): Promise<net.Socket | undefined> {
  return new Promise((resolve) => {
    const sock = net.connect(socketPath);
    const refused = (): void => {
      sock.destroy();
      resolve(undefined);
    };
    sock.once('error', refused);
    sock.once('connect', () => {
      sock.off('error', refused);
      // a failure from here on reaches whoever reads the answer (requestOn), not the process
      sock.on('error', () => undefined);
      resolve(sock);
    });
  });
}

/** Send one request on `sock` (from connectUnix) and read the answer's head; the body streams as it comes. */
export async function requestOn(sock: net.Socket, opts: { method: string; path: string; headers?: Record<string, string>; body?: string; signal?: AbortSignal }): Promise<SocketAnswer> {
  const body = Buffer.from(opts.body ?? '', 'utf8');
  const head = [`${opts.method} ${opts.path} HTTP/1.1`, 'host: localhost', 'connection: close', `content-length: ${body.length}`];
  for (const [k, v] of Object.entries(opts.headers ?? {})) head.push(`${k}: ${v}`);
  const onAbort = (): void => void sock.destroy(Object.assign(new Error('aborted'), { name: 'AbortError' }));
  if (opts.signal?.aborted) onAbort();
  opts.signal?.addEventListener('abort', onAbort, { once: true });
  sock.write(`${head.join('\r\n')}\r\n\r\n`);
  if (body.length) sock.write(body);
  const chunks = sock[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
  try {
    let buf = Buffer.alloc(0);
    let end: number;
    while ((end = buf.indexOf('\r\n\r\n')) < 0) {
      const r = await chunks.next();
      if (r.done) throw new NoAnswerError('the connection closed before an answer');
      buf = Buffer.concat([buf, r.value]);
    }
    const [statusLine, ...lines] = buf.subarray(0, end).toString('latin1').split('\r\n');
    const status = /^HTTP\/1\.[01] (\d{3})/.exec(statusLine ?? '');
    if (!status) throw new Error(`not an HTTP answer: ${JSON.stringify(statusLine?.slice(0, 80))}`);
    const headers: Record<string, string> = {};
    for (const l of lines) {
      const colon = l.indexOf(':');
      if (colon > 0) headers[l.slice(0, colon).trim().toLowerCase()] = l.slice(colon + 1).trim();
    }
    const rest = buf.subarray(end + 4);
    const framed = /\bchunked\b/i.test(headers['transfer-encoding'] ?? '') ? dechunk(chunks, rest)
      : headers['content-length'] !== undefined ? counted(chunks, rest, Number(headers['content-length']))
        : untilClose(chunks, rest);
    return { status: Number(status[1]), headers, body: closing(framed, sock, () => opts.signal?.removeEventListener('abort', onAbort)) };
  } catch (err) {
    sock.destroy();
    opts.signal?.removeEventListener('abort', onAbort);
    if ((err as Error).name === 'AbortError' || err instanceof NoAnswerError) throw err;
    const code = (err as NodeJS.ErrnoException).code;
    if (code) throw new NoAnswerError(`kiln serve did not answer: ${code}`, { cause: err });
    throw new BuildError('ERR_KILN_SERVICE_UNAVAILABLE', `kiln serve's answer: ${(err as Error).message}`, { cause: err });
  }
}

/** The body, then the connection closed (also when the reader stops early or the read fails). */
async function* closing(body: AsyncGenerator<Buffer>, sock: net.Socket, done: () => void): AsyncGenerator<Buffer> {
  try {
    yield* body;
  } finally {
    done();
    sock.destroy();
  }
}

async function* untilClose(chunks: AsyncIterator<Buffer>, first: Buffer): AsyncGenerator<Buffer> {
  if (first.length) yield first;
  for (let r = await chunks.next(); !r.done; r = await chunks.next()) yield r.value;
}

async function* counted(chunks: AsyncIterator<Buffer>, first: Buffer, length: number): AsyncGenerator<Buffer> {
  let left = length;
  let buf = first;
  for (;;) {
    if (buf.length) {
      const part = buf.subarray(0, left);
      left -= part.length;
      yield part;
    }
    if (left <= 0) return;
    const r = await chunks.next();
    if (r.done) throw new Error(`the connection closed ${left} bytes before the end of the answer`);
    buf = r.value;
  }
}

/** Transfer-Encoding: chunked, one chunk at a time (the server writes one progress line per chunk). */
async function* dechunk(chunks: AsyncIterator<Buffer>, first: Buffer): AsyncGenerator<Buffer> {
  let buf = first;
  const more = async (): Promise<void> => {
    const r = await chunks.next();
    if (r.done) throw new Error('the connection closed inside a chunked answer');
    buf = buf.length ? Buffer.concat([buf, r.value]) : r.value;
  };
  for (;;) {
    let nl: number;
    while ((nl = buf.indexOf('\r\n')) < 0) await more();
    const size = Number.parseInt(buf.subarray(0, nl).toString('latin1'), 16);
    if (!Number.isInteger(size) || size < 0) throw new Error(`bad chunk size ${JSON.stringify(buf.subarray(0, Math.min(nl, 20)).toString('latin1'))}`);
    buf = buf.subarray(nl + 2);
    if (size === 0) return; // trailers, if any, are not read
    while (buf.length < size + 2) await more();
    yield buf.subarray(0, size);
    buf = buf.subarray(size + 2);
  }
}
