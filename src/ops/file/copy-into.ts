/**
 * COPY/ADD as BuildKit's Dockerfile frontend and file backend perform them: every source is copied with
 * "directory contents only", symlinks named as sources followed inside the source root, wildcards allowed and
 * a wildcard that matches nothing tolerated as long as something was copied.
 * @internal
 */
import fs from 'node:fs';
import path from 'node:path';
import { BuildError, isBuildError } from '../../errors/index.js';
import { isArchive, unpackArchive } from './archive.js';
import { Copier, createdDirMode, createdDirOwner, mkdirAllIn, type CopySettings } from './copier.js';
import { BadPatternError, cleanAbs, cleanPath, compileGoMatch, containsWildcards, splitWildcards } from './go-path.js';
import { parseChmod } from './mode.js';
import { PatternMatcher } from './patterns.js';
import { absPath, hostTree, resolveInRoot, SourceTree } from './tree.js';
import type { CopyRequest, CopyResult } from './types.js';
import { XattrWriter } from './xattrs.js';

/** One resolved thing to copy. */
interface CopyUnit {
  /** the source as matched (root-relative, before following a final symlink) */
  matched: string;
  /** where its content is read from (root-relative) */
  rel: string;
  /** --parents include pattern, relative to the unit */
  include?: PatternMatcher;
}

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
  const settings: CopySettings = {
    destRoot,
    chown: req.chown,
    preserveOwnership: req.preserveOwnership ?? false,
    chmod: req.chmod ? parseChmod(req.chmod) : undefined,
    exclude: req.excludes && req.excludes.length > 0 ? compilePatterns(req.excludes, '--exclude') : undefined,
    xattrs: req.xattrs === false ? undefined : new XattrWriter(),
    signal: req.signal,
    stats,
    reuse: req.reuse,
  };
  const tree = new SourceTree({ root: path.resolve(req.srcRoot), isIgnored: req.isIgnored, hasExceptions: req.ignoreHasExceptions });
  const follow = req.followSourceSymlinks ?? true;
  const inline = req.inline ?? [];
  const cmd = req.unpackArchives ? 'ADD' : 'COPY';

  const units: CopyUnit[] = [];
  for (const word of req.sources) units.push(...expandSource(tree, word, { parents: req.parents ?? false, follow }));
  // Nothing matched. Docker's BuildKit (20.10, as recorded in the conformance data) fails when the patterns searched
  // only the root, and copies nothing when a pattern searched an existing subdirectory (`COPY dir/*.sql /x/`).
  // Current BuildKit never fails here; the classic builder always does.
  if (units.length === 0 && inline.length === 0 && !req.sources.some((w) => searchesSubdir(w, req.parents ?? false))) {
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
    for (const unit of units) {
      req.signal?.throwIfAborted();
      if (req.unpackArchives && (await unpackIfArchive(tree, unit, dest, settings))) continue;
      copyUnit(tree, unit, dest, settings);
    }
    for (const doc of inline) writeInline(doc, dest, settings);
    settings.xattrs?.flush();
  } catch (err) {
    if (isBuildError(err)) err.message = err.message.split(destRoot).join('');
    throw err;
  }
  return stats;
}

/** True when `word` is a wildcard whose literal directory part is not the root (it exists, or expansion threw). */
function searchesSubdir(word: string, parents: boolean): boolean {
  const pivot = parents ? word.indexOf('/./') : -1;
  const base = pivot >= 0 ? word.slice(0, pivot) : word;
  const { dir, pattern } = splitWildcards(cleanAbs(base));
  if (parents && pivot < 0) return false;
  return pattern !== '' ? cleanAbs(dir) !== '/' : parents && cleanAbs(dir) !== '/';
}

function compilePatterns(patterns: string[], flag: string): PatternMatcher {
  try {
    return new PatternMatcher(patterns);
  } catch (err) {
    throw new BuildError('ERR_KILN_COPY_OPTION', `invalid ${flag} pattern: ${(err as Error).message}`, { cause: err });
  }
}

function notFound(word: string, what?: string): BuildError {
  return new BuildError('ERR_KILN_CONTEXT_NOT_FOUND', `"${what ?? word}": not found`, { details: { source: word } });
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

/** Expand one source word into copy units (wildcards, --parents pivots). */
function expandSource(tree: SourceTree, word: string, o: { parents: boolean; follow: boolean }): CopyUnit[] {
  if (!o.parents) return resolveSource(tree, word, o.follow, undefined);
  const pivot = word.indexOf('/./');
  const base = pivot < 0 ? '/' : word.slice(0, pivot);
  const patternRaw = pivot < 0 ? word : word.slice(pivot + 3);
  const pattern = cleanAbs(patternRaw).slice(1);
  const include = pattern === '' ? undefined : compilePatterns([pattern], '--parents source');
  const units = resolveSource(tree, base, o.follow, include);
  if (!containsWildcards(base) && !containsWildcards(pattern)) {
    const required = cleanAbs(base + '/' + pattern).slice(1);
    if (!tree.lstat(resolveInRoot(tree, required, o.follow))) throw notFound(word, '/' + required);
  }
  return units;
}

function resolveSource(tree: SourceTree, word: string, follow: boolean, include: PatternMatcher | undefined): CopyUnit[] {
  const { dir, pattern } = splitWildcards(cleanAbs(word));
  if (pattern === '') {
    const matched = cleanAbs(dir).slice(1);
    const rel = resolveInRoot(tree, matched, follow);
    if (!tree.lstat(rel)) throw notFound(word);
    return [{ matched, rel, include }];
  }
  let matcher;
  try {
    matcher = compileGoMatch(pattern);
  } catch (err) {
    if (err instanceof BadPatternError) throw new BuildError('ERR_KILN_COPY_OPTION', `invalid source pattern "${word}": ${err.message}`);
    throw err;
  }
  const base = resolveInRoot(tree, cleanAbs(dir).slice(1), follow);
  const baseSt = tree.lstat(base);
  if (!baseSt) throw notFound(word, '/' + cleanAbs(dir).slice(1));
  const units: CopyUnit[] = [];
  const walk = (rel: string, depth: number): void => {
    for (const name of tree.readdir(absRel(base, rel))) {
      const childRel = rel === '' ? name : `${rel}/${name}`;
      const full = absRel(base, childRel);
      const st = tree.lstat(full);
      if (!st) continue;
      if (matcher.match(childRel)) {
        const resolved = resolveInRoot(tree, full, follow);
        if (!tree.lstat(resolved)) throw notFound(word, '/' + full);
        units.push({ matched: full, rel: resolved, include });
        continue;
      }
      if (st.isDirectory() && depth < matcher.maxDepth) walk(childRel, depth + 1);
    }
  };
  if (baseSt.isDirectory()) walk('', 1);
  return units;
}

function absRel(base: string, rel: string): string {
  if (base === '') return rel;
  return rel === '' ? base : `${base}/${rel}`;
}

/** fsutil's Copy for one unit: make dest parents, pick the target path, copy. */
function copyUnit(tree: SourceTree, unit: CopyUnit, dest: string, s: CopySettings): void {
  const destTree = hostTree(s.destRoot);
  ensureDestParents(dest, s);
  const resolvedDest = resolveInRoot(destTree, cleanPath(dest));
  const srcSt = tree.lstat(unit.rel)!;
  let targetRel = resolvedDest;
  const destExisting = statFollow(absPath(s.destRoot, resolvedDest));
  if (!srcSt.isDirectory() && destExisting?.isDirectory()) targetRel = joinRel(resolvedDest, path.posix.basename(unit.matched) || '.');
  const parentRel = srcSt.isDirectory() && !destExisting ? targetRel : dirRel(targetRel);
  mkdirAllIn(s.destRoot, parentRel, createdDirMode(s), createdDirOwner(s));
  new Copier(s, tree, unit.include).run(unit.rel, absPath(s.destRoot, targetRel));
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

async function unpackIfArchive(tree: SourceTree, unit: CopyUnit, dest: string, s: CopySettings): Promise<boolean> {
  const file = tree.abs(unit.rel);
  if (!(await isArchive(file))) return false;
  const destRel = resolveInRoot(hostTree(s.destRoot), dest);
  mkdirAllIn(s.destRoot, destRel, 0o755, createdDirOwner(s));
  const r = await unpackArchive({ file, destDir: absPath(s.destRoot, destRel), chown: s.chown, xattrs: s.xattrs, signal: s.signal });
  s.stats.files += r.files;
  s.stats.bytes += r.bytes;
  return true;
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
