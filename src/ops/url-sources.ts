/**
 * `ADD <url>`: what a URL source contributes to the step's cache key, and copying the downloaded file into the
 * image the way BuildKit's HTTP source does (never unpacked; mode 0600 unless --chmod; Last-Modified as mtime; named
 * after the URL unless the destination names a file).
 * @internal
 */
import { createHash, randomBytes } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { copyInto, fetchUrl, type Owner } from './file/index.js';

/** True for the sources ADD downloads instead of reading from the context. */
export function isUrlSource(source: string): boolean {
  return /^https?:\/\//i.test(source);
}

/** Options of {@link urlKeyInputs}. */
export interface UrlKeyInputsOptions {
  urls: string[];
  /** `--checksum`: when given, it is the content identity and nothing is downloaded */
  checksum: string;
  /** a directory for temporary downloads */
  tmpRoot: string;
  signal?: AbortSignal;
}

/**
 * The content identity of each URL: the pinned `--checksum`, else the digest of what the server sends now (so a
 * changed remote file is a cache miss, and an unchanged one a hit).
 */
export async function urlKeyInputs(opts: UrlKeyInputsOptions): Promise<Array<[string, string]>> {
  const out: Array<[string, string]> = [];
  for (const url of opts.urls) {
    if (opts.checksum) {
      out.push([url, opts.checksum]);
      continue;
    }
    const dir = await tempDir(opts.tmpRoot);
    try {
      const r = await fetchUrl({ url, destFile: path.join(dir, 'body'), ...(opts.signal ? { signal: opts.signal } : {}) });
      out.push([url, r.digest]);
    } finally {
      await fsp.rm(dir, { recursive: true, force: true });
    }
  }
  return out;
}

/** Merge URL identities into a step's content inputs (the key uses `digest`). */
export function withUrlInputs(content: Record<string, unknown>, urls: Array<[string, string]>): Record<string, unknown> {
  const local = typeof content.digest === 'string' ? content.digest : '';
  const digest = `sha256:${createHash('sha256').update(JSON.stringify({ local, urls })).digest('hex')}`;
  return { ...content, digest, urls };
}

/** Options of {@link copyUrlSources}. */
export interface CopyUrlSourcesOptions {
  urls: string[];
  checksum: string;
  tmpRoot: string;
  destRoot: string;
  dest: string;
  workdir: string;
  chown?: Owner;
  chmod?: string;
  signal?: AbortSignal;
}

/** Download each URL (verifying `checksum` when given) and copy it to `dest` with ADD's rules for remote files. */
export async function copyUrlSources(opts: CopyUrlSourcesOptions): Promise<void> {
  for (const url of opts.urls) {
    const dir = await tempDir(opts.tmpRoot);
    try {
      const r = await fetchUrl({
        url,
        destFile: path.join(dir, 'body'),
        ...(opts.checksum ? { checksum: opts.checksum } : {}),
        ...(opts.signal ? { signal: opts.signal } : {}),
      });
      const src = path.join(dir, 'src');
      await fsp.mkdir(src);
      await fsp.rename(path.join(dir, 'body'), path.join(src, r.name));
      await copyInto({
        srcRoot: src,
        sources: [r.name],
        destRoot: opts.destRoot,
        dest: opts.dest,
        workdir: opts.workdir,
        ...(opts.chown ? { chown: opts.chown } : {}),
        ...(opts.chmod ? { chmod: opts.chmod } : {}),
        unpackArchives: false,
        followSourceSymlinks: false,
        ...(opts.signal ? { signal: opts.signal } : {}),
      });
    } finally {
      await fsp.rm(dir, { recursive: true, force: true });
    }
  }
}

async function tempDir(root: string): Promise<string> {
  const dir = path.join(root, `url-${randomBytes(8).toString('hex')}`);
  await fsp.mkdir(dir, { recursive: true, mode: 0o700 });
  return dir;
}
