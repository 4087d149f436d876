import { createHash } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { BuildError } from '../errors/index.js';
import type { ManifestEntry, UploadStore } from '../service/index.js';

/** Check a manifest: relative clean paths, each once, files with digests. Returns the problem or undefined. */
export function manifestProblem(entries: ManifestEntry[]): string | undefined {
  const seen = new Set<string>();
  for (const [i, e] of entries.entries()) {
    const p = e.path;
    if (p === '' || p.startsWith('/') || p.split('/').some((c) => c === '..' || c === '.' || c === '') || p.includes('\0')) return `context[${i}].path: "${p}" must be a relative path inside the context`;
    if (seen.has(p)) return `context[${i}].path: "${p}" appears twice`;
    seen.add(p);
    if (e.type === 'file' && !e.linkOf && !e.digest) return `context[${i}].digest: a file needs its sha256 digest`;
    if (e.type === 'symlink' && e.target === undefined) return `context[${i}].target: a symlink needs its target`;
    if (e.linkOf !== undefined && !seen.has(e.linkOf)) return `context[${i}].linkOf: "${e.linkOf}" is not an earlier entry`;
  }
  return undefined;
}

function sameEntry(a: ManifestEntry | undefined, b: ManifestEntry): boolean {
  return !!a && a.type === b.type && a.mode === b.mode && a.digest === b.digest && a.target === b.target && a.linkOf === b.linkOf;
}

/** What one materialization did. */
export interface MaterializeOutcome {
  /** entries (re)written; unchanged ones were left alone */
  written: number;
  /** blobs and bytes the upload store had to download into its local cache first */
  fetched: number;
  fetchedBytes: number;
}

/**
 * Write a manifest's files from the upload store into `dir`. When `dir` holds the previous build of the same
 * template (its applied manifest in `dir.json`), only changed entries are rewritten and removed ones deleted, so
 * unchanged files keep their inode and times and the engine's stat cache answers for them without reading them. Only
 * the blobs of changed entries are asked of the store, which downloads those its local cache lacks.
 * The record is removed before and written after, so an interrupted sync is redone from scratch.
 */
export async function materializeContext(opts: { dir: string; entries: ManifestEntry[]; uploads: UploadStore; signal?: AbortSignal }): Promise<MaterializeOutcome> {
  const { dir, entries, uploads } = opts;
  const recordFile = `${dir}.json`;
  let previous = new Map<string, ManifestEntry>();
  try {
    const prev = JSON.parse(await fsp.readFile(recordFile, 'utf8')) as ManifestEntry[];
    previous = new Map(prev.map((e) => [e.path, e]));
  } catch {
    await fsp.rm(dir, { recursive: true, force: true });
  }
  const changed = entries.filter((e) => e.type !== 'dir' && !sameEntry(previous.get(e.path), e));
  const blobs = await uploads.local(changed.flatMap((e) => (e.type === 'file' && !e.linkOf ? [e.digest!] : [])), opts.signal ? { signal: opts.signal } : {});
  for (const e of changed) {
    if (e.type !== 'file' || e.linkOf || blobs.paths.has(e.digest!)) continue;
    throw new BuildError('ERR_KILN_SERVICE_REQUEST', `context file "${e.path}" (${e.digest}) was not uploaded`, { hint: 'upload every digest POST /v1/uploads/missing names, then start the build' });
  }
  await fsp.rm(recordFile, { force: true });
  await fsp.mkdir(dir, { recursive: true, mode: 0o755 });
  const wanted = new Map(entries.map((e) => [e.path, e]));
  // deletions first, deepest first: anything gone or changed in kind
  const stale = [...previous.values()].filter((e) => { const w = wanted.get(e.path); return !w || w.type !== e.type || (e.type !== 'dir' && !sameEntry(e, w)); });
  for (const e of stale.sort((a, b) => b.path.length - a.path.length)) await fsp.rm(path.join(dir, e.path), { recursive: true, force: true });
  const dirs: ManifestEntry[] = [];
  let written = 0;
  // hardlinks after every other entry: the file they link to may sort after them
  const order = [...entries].sort((a, b) => (a.linkOf ? 1 : 0) - (b.linkOf ? 1 : 0) || a.path.localeCompare(b.path));
  for (const e of order) {
    const abs = path.join(dir, e.path);
    if (e.type === 'dir') {
      await fsp.mkdir(abs, { recursive: true });
      dirs.push(e);
      continue;
    }
    if (sameEntry(previous.get(e.path), e)) continue;
    written++;
    await fsp.mkdir(path.dirname(abs), { recursive: true });
    if (e.type === 'symlink') await fsp.symlink(e.target!, abs);
    else if (e.linkOf) await fsp.link(path.join(dir, e.linkOf), abs);
    else {
      await fsp.copyFile(blobs.paths.get(e.digest!)!, abs);
      await fsp.chmod(abs, e.mode & 0o7777);
    }
  }
  // directory modes last (a read-only directory would refuse its children)
  for (const e of dirs.reverse()) await fsp.chmod(path.join(dir, e.path), e.mode & 0o7777);
  await fsp.writeFile(recordFile, JSON.stringify(entries));
  return { written, fetched: blobs.fetched, fetchedBytes: blobs.fetchedBytes };
}

/** The folder of a template's (or an anonymous build's) materialized context under the team root. */
export function contextDirFor(teamRoot: string, key: string): string {
  return path.join(teamRoot, 'contexts', createHash('sha256').update(key).digest('hex').slice(0, 32));
}
