import { createHash } from 'node:crypto';
import { readTar } from './read-tar.js';
import type { ListLayerOptions, TarEntryInfo } from './types.js';

const ZEROS = Buffer.alloc(1024 * 1024);

/**
 * Read a layer (gzip, zstd or plain tar) and list its entries in archive order; with `withContent`, each file's
 * bytes too. Meant for tests and tools: it holds everything in memory.
 *
 * @example
 * const entries = await listLayer({ source: store.path(layer.digest) });
 * for (const e of entries) console.log(e.type, e.path);
 */
export async function listLayer(opts: ListLayerOptions): Promise<TarEntryInfo[]> {
  const out: TarEntryInfo[] = [];
  await readTar({
    source: opts.source,
    signal: opts.signal,
    onEntry: (e) => {
      const info: TarEntryInfo = { path: e.path, type: e.type, mode: e.mode, uid: e.uid, gid: e.gid, size: e.size, mtime: e.mtime };
      if (e.linkname !== undefined) info.linkname = e.linkname;
      if (e.type === 'character-device' || e.type === 'block-device') {
        info.devmajor = e.devmajor;
        info.devminor = e.devminor;
      }
      if (e.sparse) info.sparse = e.sparse.map(([o, l]) => [o, l]);
      if (e.xattrs) info.xattrs = Object.fromEntries(e.xattrs.map(([k, v]) => [k, v.toString('latin1')]));
      out.push(info);
      if (opts.withDigest && e.type === 'file') {
        // streamed: the holes of a sparse entry are hashed as the zeros they are, nothing is held
        const h = createHash('sha256');
        let pos = 0;
        const zeros = (to: number): void => {
          for (; pos < to; pos = Math.min(to, pos + ZEROS.length)) h.update(ZEROS.subarray(0, Math.min(ZEROS.length, to - pos)));
        };
        return {
          data: (c, offset) => {
            zeros(offset);
            h.update(c);
            pos = offset + c.length;
          },
          end: () => {
            zeros(e.size);
            info.sha256 = h.digest('hex');
          },
        };
      }
      if (!opts.withContent || e.type !== 'file') return null;
      if (e.sparse) {
        const content = Buffer.alloc(e.size);
        return {
          data: (c, offset) => void c.copy(content, offset),
          end: () => {
            info.content = content;
          },
        };
      }
      const chunks: Buffer[] = [];
      return {
        data: (c) => chunks.push(Buffer.from(c)),
        end: () => {
          info.content = Buffer.concat(chunks);
        },
      };
    },
  });
  return out;
}
