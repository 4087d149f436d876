/**
 * ADD <url>: download to a file the way BuildKit's HTTP source does (mode 0600, mtime from Last-Modified,
 * optional sha256 checksum).
 * @internal
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { BuildError } from '../../errors/index.js';
import type { FetchUrlOptions, FetchUrlResult } from './types.js';

/**
 * Fetch `opts.url` (HTTP or HTTPS, redirects followed) into `opts.destFile`.
 *
 * @example
 * const r = await fetchUrl({ url: 'https://example.com/a.tgz', destFile: '/tmp/dl/a.tgz' });
 */
export async function fetchUrl(opts: FetchUrlOptions): Promise<FetchUrlResult> {
  const url = parseUrl(opts.url);
  const expected = opts.checksum === undefined ? undefined : parseChecksum(opts.checksum);
  let res: Response;
  try {
    res = await fetch(url, { redirect: 'follow', signal: opts.signal });
  } catch (err) {
    if (opts.signal?.aborted) throw err;
    throw new BuildError('ERR_KILN_FETCH_FAILED', `GET ${redact(url)}: ${causeMessage(err)}`, { cause: err });
  }
  if (!res.ok) {
    await res.body?.cancel();
    throw new BuildError('ERR_KILN_FETCH_FAILED', `GET ${redact(url)}: HTTP ${res.status} ${res.statusText}`.trim(), {
      details: { status: res.status },
    });
  }
  const tmp = `${opts.destFile}.part-${process.pid}-${crypto.randomBytes(4).toString('hex')}`;
  const { digest, size } = await writeBody(res, tmp);
  try {
    if (expected !== undefined && digest !== expected) {
      throw new BuildError('ERR_KILN_FETCH_CHECKSUM', `${redact(url)}: content digest ${digest} does not match --checksum ${expected}`);
    }
    const mtime = parseLastModified(res.headers.get('last-modified'));
    fs.chmodSync(tmp, 0o600);
    if (mtime) fs.utimesSync(tmp, mtime, mtime);
    fs.renameSync(tmp, opts.destFile);
    return { digest, name: fileName(url, res.headers.get('content-disposition')), mtime, size };
  } catch (err) {
    fs.rmSync(tmp, { force: true });
    throw err;
  }
}

function parseUrl(raw: string): URL {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new BuildError('ERR_KILN_ARGUMENT', `invalid URL ${raw}`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new BuildError('ERR_KILN_ARGUMENT', `unsupported URL scheme ${url.protocol} (only http and https)`);
  }
  return url;
}

function parseChecksum(raw: string): string {
  const m = /^sha256:([0-9a-fA-F]{64})$/.exec(raw.trim());
  if (!m) throw new BuildError('ERR_KILN_ARGUMENT', `invalid checksum ${raw}: expected sha256:<64 hex digits>`);
  return `sha256:${m[1].toLowerCase()}`;
}

async function writeBody(res: Response, file: string): Promise<{ digest: string; size: number }> {
  const hash = crypto.createHash('sha256');
  const fd = fs.openSync(file, 'wx', 0o600);
  let size = 0;
  try {
    if (res.body) {
      for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
        hash.update(chunk);
        let off = 0;
        while (off < chunk.length) off += fs.writeSync(fd, chunk, off, chunk.length - off);
        size += chunk.length;
      }
    }
  } catch (err) {
    fs.closeSync(fd);
    fs.rmSync(file, { force: true });
    throw err instanceof BuildError ? err : new BuildError('ERR_KILN_FETCH_FAILED', `download failed: ${causeMessage(err)}`, { cause: err });
  }
  fs.closeSync(fd);
  return { digest: `sha256:${hash.digest('hex')}`, size };
}

/** Last URL path segment (what Docker's frontend names the file), else Content-Disposition, else `__unnamed__`. */
function fileName(url: URL, disposition: string | null): string {
  const base = path.posix.basename(decodeSafe(url.pathname));
  if (base !== '' && base !== '.' && base !== '/') return base;
  const fromHeader = dispositionName(disposition);
  return fromHeader ?? '__unnamed__';
}

function dispositionName(header: string | null): string | undefined {
  if (!header) return undefined;
  const star = /filename\*\s*=\s*(?:UTF-8|utf-8)''([^;]+)/.exec(header);
  const plain = /filename\s*=\s*("([^"]*)"|[^;]+)/.exec(header);
  const raw = star ? decodeSafe(star[1].trim()) : plain ? (plain[2] ?? plain[1]).trim() : undefined;
  if (!raw) return undefined;
  const base = path.posix.basename(raw.replace(/\\/g, '/'));
  return base === '' || base === '.' || base === '..' ? undefined : base;
}

function decodeSafe(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

function parseLastModified(v: string | null): Date | undefined {
  if (!v) return undefined;
  const t = Date.parse(v);
  return Number.isNaN(t) ? undefined : new Date(t);
}

function redact(url: URL): string {
  if (!url.username && !url.password) return url.toString();
  const copy = new URL(url.toString());
  copy.username = '';
  copy.password = '';
  return copy.toString();
}

function causeMessage(err: unknown): string {
  const e = err as { message?: string; cause?: { message?: string; code?: string } };
  return e.cause?.code ?? e.cause?.message ?? e.message ?? String(err);
}
