import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, existsSync, promises as fsp } from 'node:fs';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { BuildError } from '../errors/index.js';

const DIGEST = /^sha256:[a-f0-9]{64}$/;

/**
 * A team's content-addressed upload store (`TEAM_ROOT/uploads/sha256/<hex>`): context files sent by clients.
 * A blob appears only after its bytes were streamed to a temp file, fsynced and verified against the digest; a
 * mismatch deletes the temp file and stores nothing. A dropped upload leaves only a temp file, removed at start.
 */
export class UploadStore {
  constructor(readonly dir: string) {}

  static isDigest(d: string): boolean {
    return DIGEST.test(d);
  }

  path(digest: string): string {
    if (!DIGEST.test(digest)) throw new BuildError('ERR_KILN_ARGUMENT', `"${digest}" is not a sha256 digest`);
    return path.join(this.dir, 'sha256', digest.slice(7));
  }

  has(digest: string): boolean {
    return existsSync(this.path(digest));
  }

  /** The digests of `digests` this store does not hold. */
  missing(digests: Iterable<string>): string[] {
    const out = new Set<string>();
    for (const d of digests) if (!this.has(d)) out.add(d);
    return [...out];
  }

  async init(): Promise<void> {
    await fsp.mkdir(path.join(this.dir, 'sha256'), { recursive: true });
    await fsp.mkdir(path.join(this.dir, 'ingest'), { recursive: true });
    for (const n of await fsp.readdir(path.join(this.dir, 'ingest'))) await fsp.rm(path.join(this.dir, 'ingest', n), { force: true });
  }

  /** Stream `body` in, verified against `digest` and at most `maxBytes`; returns the bytes written. */
  async put(digest: string, body: Readable, maxBytes: number): Promise<number> {
    const dest = this.path(digest);
    const tmp = path.join(this.dir, 'ingest', `${digest.slice(7, 23)}-${randomBytes(4).toString('hex')}`);
    const fh = await fsp.open(tmp, 'wx', 0o600);
    const hash = createHash('sha256');
    let bytes = 0;
    try {
      for await (const chunk of body as AsyncIterable<Buffer>) {
        bytes += chunk.length;
        if (bytes > maxBytes) throw new BuildError('ERR_KILN_LIMIT_EXCEEDED', `upload ${digest} is larger than the limit of ${maxBytes} bytes (uploadBytesPerBuild)`);
        hash.update(chunk);
        await fh.write(chunk);
      }
      const got = `sha256:${hash.digest('hex')}`;
      if (got !== digest) throw new BuildError('ERR_KILN_UPLOAD_DIGEST', `uploaded bytes have digest ${got}, not ${digest}`);
      await fh.sync();
      await fh.close();
      await fsp.rename(tmp, dest);
      return bytes;
    } catch (err) {
      await fh.close().catch(() => undefined);
      await fsp.rm(tmp, { force: true });
      throw err;
    }
  }

  open(digest: string): Readable {
    return createReadStream(this.path(digest));
  }
}
