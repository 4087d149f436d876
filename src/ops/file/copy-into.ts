/**
 * COPY/ADD as BuildKit's Dockerfile frontend and file backend perform them: every source is copied with
 * "directory contents only", symlinks named as sources followed inside the source root, wildcards allowed and
 * a wildcard that matches nothing tolerated as long as something was copied.
 * @internal
 */
import fs from 'node:fs';
import path from 'node:path';
import { BuildError, isBuildError } from '../../errors/index.js';
import { absPath, cleanAbs, cleanPath, hostTree, resolveInRoot, resolveSources, type ResolvedSources, type SourceUnit } from '../../context/index.js';
import { archiveContentDigest, unpackArchive } from './archive.js';
import { checkUnchanged, createdDirMode, createdDirOwner, mkdirAllIn, writeUnit, type CopySettings } from './copier.js';
import { parseChmod } from './mode.js';
import type { CopyRequest, CopyResult } from './types.js';
import { XattrWriter } from './xattrs.js';

/**
 * Copy `req.sources` (and inline heredoc files) from `req.srcRoot` into `req.destRoot` at `req.dest`, with Docker's
 * COPY/ADD rules. Writes only inside destRoot.
 *
 * @example
 * await copyInto({ srcRoot: contextDir, sources: ['src/', '*.json'], destRoot: rootfs, dest: '/app/', workdir: '/' });
 */
export async function copyInto(req: CopyRequest): Promise<CopyResult> {
  req.signal?.throwIfAborted();
  const stats = { files: 0, bytes: 0 };
  const destRoot = path.resolve(req.destRoot);
  const inline = req.inline ?? [];
  const cmd = req.unpackArchives ? 'ADD' : 'COPY';
  const resolved: ResolvedSources = req.resolved ?? (await resolveSources({
    root: req.srcRoot,
    sources: req.sources,
    inlineCount: inline.length,
    ...(req.isIgnored ? { isIgnored: req.isIgnored } : {}),
    ...(req.ignoreHasExceptions !== undefined ? { ignoreHasExceptions: req.ignoreHasExceptions } : {}),
    ...(req.excludes ? { excludes: req.excludes } : {}),
    parents: req.parents ?? false,
    followSourceSymlinks: req.followSourceSymlinks ?? true,
    keepOwnership: (req.preserveOwnership ?? false) && !req.chown,
    xattrs: req.xattrs !== false,
    ...(req.unpackArchives ? { archiveDigest: archiveContentDigest } : {}),
    command: cmd,
    ...(req.signal ? { signal: req.signal } : {}),
  }));
  const settings: CopySettings = {
    destRoot,
    chown: req.chown,
    preserveOwnership: req.preserveOwnership ?? false,
    chmod: req.chmod ? parseChmod(req.chmod) : undefined,
    xattrs: req.xattrs === false ? undefined : new XattrWriter(),
    signal: req.signal,
    stats,
    checkUnchanged: req.checkUnchanged ?? false,
  };
  // Nothing matched. Docker's BuildKit (20.10, as recorded in the conformance data) fails when the patterns searched
  // only the root, and copies nothing when a pattern searched an existing subdirectory (`COPY dir/*.sql /x/`).
  // Current BuildKit never fails here; the classic builder always does.
  if (resolved.nothingMatched) {
    throw new BuildError('ERR_KILN_CONTEXT_NOT_FOUND', `${cmd} failed: no source files were specified (no match for ${req.sources.map((s) => `"${s}"`).join(', ')})`, {
      details: { sources: req.sources },
    });
  }

  const dest = normalizeDest(req.dest, req.workdir);
  const destTree = hostTree(destRoot);
  const dirForm = dest.endsWith('/') || dest.endsWith('/.');
  if (req.sources.length + inline.length > 1 && !dirForm && !isExistingDir(destTree.root, resolveInRoot(destTree, cleanPath(dest)))) {
    throw new BuildError('ERR_KILN_COPY_DEST', `When using ${cmd} with more than one source file, the destination must be a directory and end with a /`);
  }

  try {
    for (const unit of resolved.units) {
      req.signal?.throwIfAborted();
      // entries are root-relative: a stage is read through whatever mount of it the caller has now
      if (unit.archive) await unpackUnit(path.resolve(req.srcRoot), unit, dest, settings);
      else copyUnit(path.resolve(req.srcRoot), unit, dest, settings);
    }
    for (const doc of inline) writeInline(doc, dest, settings);
    settings.xattrs?.flush();
  } catch (err) {
    if (isBuildError(err)) err.message = err.message.split(destRoot).join('');
    throw err;
  }
  return stats;
}

/**
 * Docker's pathRelativeToWorkingDir plus the backend's cleanPath: an absolute, cleaned dest that keeps a trailing
 * '/' (or '/.') when the original had one. '.' and '' mean the working directory as a directory.
 */
export function normalizeDest(dest: string, workdir: string): string {
  let p = dest === '.' || dest === '' ? './' : dest;
  const joined = p.startsWith('/') ? cleanAbs(p) : cleanAbs(cleanAbs(workdir) + '/' + p);
  if (joined === '/') return '/';
  if (p.endsWith('/.')) return joined + '/.';
  if (p.endsWith('/')) return joined + '/';
  p = joined;
  return p;
}

function isExistingDir(root: string, rel: string): boolean {
  try {
    return fs.statSync(absPath(root, rel)).isDirectory();
  } catch {
    return false;
  }
}

/** fsutil's Copy for one unit: make dest parents, pick the target path, copy. */
function copyUnit(root: string, unit: SourceUnit, dest: string, s: CopySettings): void {
  const destTree = hostTree(s.destRoot);
  ensureDestParents(dest, s);
  const resolvedDest = resolveInRoot(destTree, cleanPath(dest));
  const isDir = unit.entries[0]?.type === 'dir';
  let targetRel = resolvedDest;
  const destExisting = statFollow(absPath(s.destRoot, resolvedDest));
  if (!isDir && destExisting?.isDirectory()) targetRel = joinRel(resolvedDest, path.posix.basename(unit.matched) || '.');
  const parentRel = isDir && !destExisting ? targetRel : dirRel(targetRel);
  mkdirAllIn(s.destRoot, parentRel, createdDirMode(s), createdDirOwner(s));
  writeUnit(s, root, unit, absPath(s.destRoot, targetRel));
}

/** Create the dest directory (dest ending in '/' or '/.') or dest's parent. */
function ensureDestParents(dest: string, s: CopySettings): void {
  const destTree = hostTree(s.destRoot);
  const slash = dest.lastIndexOf('/');
  const file = dest.slice(slash + 1);
  const ensure = file !== '' && file !== '.' ? dest.slice(0, slash + 1) : dest;
  if (ensure === '') return;
  mkdirAllIn(s.destRoot, resolveInRoot(destTree, ensure), createdDirMode(s), createdDirOwner(s));
}

async function unpackUnit(root: string, unit: SourceUnit, dest: string, s: CopySettings): Promise<void> {
  const entry = unit.entries[0]!;
  const file = absPath(root, entry.src);
  const destRel = resolveInRoot(hostTree(s.destRoot), dest);
  mkdirAllIn(s.destRoot, destRel, 0o755, createdDirOwner(s));
  const r = await unpackArchive({ file, destDir: absPath(s.destRoot, destRel), chown: s.chown, xattrs: s.xattrs, signal: s.signal });
  if (s.checkUnchanged) checkUnchanged(file, entry);
  s.stats.files += r.files;
  s.stats.bytes += r.bytes;
}

/** A heredoc source: a root-owned 0644 file named `doc.path`, copied like a file source. */
function writeInline(doc: { path: string; data: string }, dest: string, s: CopySettings): void {
  const destTree = hostTree(s.destRoot);
  ensureDestParents(dest, s);
  const resolvedDest = resolveInRoot(destTree, cleanPath(dest));
  let targetRel = resolvedDest;
  if (statFollow(absPath(s.destRoot, resolvedDest))?.isDirectory()) targetRel = joinRel(resolvedDest, path.posix.basename(doc.path));
  mkdirAllIn(s.destRoot, dirRel(targetRel), createdDirMode(s), createdDirOwner(s));
  const target = absPath(s.destRoot, targetRel);
  const existing = fs.lstatSync(target, { throwIfNoEntry: false });
  if (existing?.isDirectory()) throw new BuildError('ERR_KILN_COPY_DEST', `cannot replace directory ${target} with a file`);
  if (existing) fs.unlinkSync(target);
  const data = Buffer.from(doc.data);
  fs.writeFileSync(target, data, { mode: 0o644, flag: 'wx' });
  const owner = s.chown ?? { uid: 0, gid: 0 };
  fs.lchownSync(target, owner.uid, owner.gid);
  fs.chmodSync(target, s.chmod ? s.chmod.apply(0o644, false) : 0o644);
  s.stats.files++;
  s.stats.bytes += data.length;
}

function statFollow(p: string): fs.Stats | undefined {
  try {
    return fs.statSync(p);
  } catch {
    return undefined;
  }
}

function joinRel(a: string, b: string): string {
  return a === '' ? b : `${a}/${b}`;
}

function dirRel(rel: string): string {
  const i = rel.lastIndexOf('/');
  return i < 0 ? '' : rel.slice(0, i);
}
