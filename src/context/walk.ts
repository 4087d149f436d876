import { lstatSync, readlinkSync, statSync } from 'node:fs';
import path from 'node:path';
import { BuildError } from '../errors/index.js';
import { dedupePaths, followLinks } from './follow-links.js';
import { compileMatcher } from './pattern-matcher.js';
import { walkBelow, type WalkLayer } from './walk-engine.js';

/** One entry of the build context, as a context walk yields it. */
export interface ContextEntry {
  /** relative, '/'-separated */
  path: string;
  type: 'file' | 'dir' | 'symlink' | 'other';
  /** full st_mode */
  mode: number;
  size: number;
  uid: number;
  gid: number;
  linkTarget?: string;
  dev: number;
  ino: number;
  mtimeMs: number;
  ctimeMs: number;
  nlink: number;
}

/** One filter of a context walk (fsutil FilterOpt without FollowPaths). */
export interface ContextFilter {
  /** Keep only paths matched by these (and the directories leading to them). */
  includePatterns?: string[];
  /** Drop paths matched by these (.dockerignore syntax, `!` exceptions). */
  excludePatterns?: string[];
}

export interface WalkContextOptions extends ContextFilter {
  dir: string;
  /** Symlinks along these paths (wildcards allowed) are resolved and their targets included as well. */
  followPaths?: string[];
  /** Further filters stacked on top of the first one, innermost first (fsutil NewFilterFS nesting). */
  filters?: ContextFilter[];
  signal?: AbortSignal;
  /** refuse (ERR_KILN_LIMIT_EXCEEDED) as soon as the files walked add up to more than this many bytes */
  maxBytes?: number;
}

/** @internal */
export function entryType(mode: number): ContextEntry['type'] {
  const t = mode & 0o170000;
  if (t === 0o100000) return 'file';
  if (t === 0o040000) return 'dir';
  if (t === 0o120000) return 'symlink';
  return 'other';
}

/** lstat a path into a ContextEntry. @internal */
export function statEntry(rel: string, abs: string): ContextEntry {
  const st = lstatSync(abs);
  const type = entryType(st.mode);
  const entry: ContextEntry = {
    path: rel,
    type,
    mode: st.mode,
    size: st.size,
    uid: st.uid,
    gid: st.gid,
    dev: st.dev,
    ino: st.ino,
    mtimeMs: st.mtimeMs,
    ctimeMs: st.ctimeMs,
    nlink: st.nlink,
  };
  if (type === 'symlink') entry.linkTarget = readlinkSync(abs);
  return entry;
}

function compileLayer(filter: ContextFilter, extraIncludes?: string[] | null): WalkLayer {
  let includes = filter.includePatterns ?? [];
  if (extraIncludes) includes = dedupePaths([...includes, ...extraIncludes]) ?? [];
  return {
    include: includes.length > 0 ? compileMatcher(includes) : null,
    exclude: filter.excludePatterns && filter.excludePatterns.length > 0 ? compileMatcher(filter.excludePatterns) : null,
    strip: '',
  };
}

function checkRoot(dir: string): void {
  let ok = false;
  try {
    ok = statSync(dir).isDirectory();
  } catch {
    ok = false;
  }
  if (!ok) {
    throw new BuildError('ERR_KILN_CONTEXT_NOT_FOUND', `build context ${JSON.stringify(dir)} is not a directory`, {
      details: { path: dir },
    });
  }
}

/**
 * Walk a build context the way BuildKit's fsutil sends it: depth-first, sorted by name at each level, with
 * include patterns (which also yield the directories leading to a match), exclude patterns (.dockerignore;
 * excluded directories are still read when an exception could match inside, and their read errors are then
 * ignored), and follow paths. Invalid patterns throw ERR_KILN_IGNORE_PATTERN; an unreadable directory that
 * is sent throws ERR_KILN_CONTEXT_UNREADABLE.
 *
 * @example
 * const entries = await walkContext({ dir: '.', excludePatterns: await readIgnorePatterns({ contextDir: '.' }) });
 */
export async function walkContext(opts: WalkContextOptions): Promise<ContextEntry[]> {
  const dir = path.resolve(opts.dir);
  const first: ContextFilter = { includePatterns: opts.includePatterns, excludePatterns: opts.excludePatterns };
  const layers = [first, ...(opts.filters ?? [])].map((f, i) => compileLayer(f, i === 0 ? undefined : null));
  checkRoot(dir);
  if (opts.followPaths) layers[0] = compileLayer(first, followLinks(dir, opts.followPaths));
  opts.signal?.throwIfAborted();
  const out: ContextEntry[] = [];
  let bytes = 0;
  walkBelow(
    { rel: '.', abs: dir, parent: null, yielded: true, states: layers.map(() => ({ inc: null, exc: null })) },
    {
      layers,
      signal: opts.signal,
      visit: (item) => {
        try {
          const e = statEntry(item.rel, item.abs);
          out.push(e);
          if (opts.maxBytes !== undefined && e.type === 'file' && (bytes += e.size) > opts.maxBytes) {
            throw new BuildError('ERR_KILN_LIMIT_EXCEEDED', `build context ${JSON.stringify(dir)} is larger than the limit of ${opts.maxBytes} bytes (maxContextBytes; at ${e.path})`, {
              hint: 'exclude what the build does not need in .dockerignore, or send a smaller context',
              details: { limit: opts.maxBytes, path: e.path },
            });
          }
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err; // removed while walking: skip it
        }
      },
    },
  );
  return out;
}
