import { lstatSync, readdirSync, rmdirSync, type Dirent, type Stats } from 'node:fs';
import path from 'node:path';
import { getXattr } from '../../sys/index.js';

/**
 * Remove directories from an overlay upper dir that are only copy-ups: empty, not opaque, and identical in mode,
 * owner and mtime to the directory the lower layers have at the same path. overlayfs copies a directory up whenever
 * something inside it is created, even if it is removed again (a mount point stub), so without this a step that
 * changed nothing would still produce a layer with that directory in it. Deepest first, so parents that become
 * empty are looked at too. Returns the relative paths removed.
 *
 * The walk first finds the folders that would go if none were opaque; then the opaque flag of each is read (a RUN
 * step's upper dir usually has a few, runc's mount points), and an opaque folder stays with every folder above it.
 */
export function dropCopyUps(upperDir: string, lowerDirs: string[]): string[] {
  const candidates: string[] = [];
  const visit = (rel: string): boolean => {
    const abs = path.join(upperDir, rel);
    let names: Dirent[];
    try {
      // the entry types come with the names (getdents' d_type): only folders are looked at further, so the layer
      // writer's walk that follows is the only lstat of every file
      names = readdirSync(abs, { withFileTypes: true });
    } catch {
      return false;
    }
    let left = names.length;
    for (const d of names) {
      if (d.isDirectory() && visit(rel ? `${rel}/${d.name}` : d.name)) left--;
    }
    if (rel === '' || left > 0) return false;
    const lower = lowerDir(lowerDirs, rel);
    if (!lower || !sameDir(lstatSync(abs), lower)) return false;
    candidates.push(rel);
    return true;
  };
  visit('');
  if (candidates.length === 0) return [];
  const kept = new Set<string>();
  for (const rel of opaqueOf(upperDir, candidates)) {
    // the folder stays, so every folder above it is not empty
    for (let p = rel; p !== '.' && p !== ''; p = path.posix.dirname(p)) kept.add(p);
  }
  // candidates are in walk order, children before their parents
  const removed: string[] = [];
  for (const rel of candidates) {
    if (kept.has(rel)) continue;
    rmdirSync(path.join(upperDir, rel));
    removed.push(rel);
  }
  return removed;
}

function lowerDir(lowerDirs: string[], rel: string): Stats | undefined {
  for (const d of lowerDirs) {
    try {
      const st = lstatSync(path.join(d, rel));
      return st.isDirectory() ? st : undefined;
    } catch {
      /* not in this layer: look further down */
    }
  }
  return undefined;
}

function sameDir(a: Stats, b: Stats): boolean {
  return a.mode === b.mode && a.uid === b.uid && a.gid === b.gid && Math.floor(a.mtimeMs) === Math.floor(b.mtimeMs);
}

/** The folders among `rels` (under `upperDir`) with `trusted.overlay.opaque=y`; one whose flag cannot be read counts as opaque (it is kept). */
function opaqueOf(upperDir: string, rels: string[]): string[] {
  return rels.filter((rel) => {
    try {
      return getXattr(path.join(upperDir, rel), 'trusted.overlay.opaque')?.toString('latin1') === 'y';
    } catch {
      return true;
    }
  });
}
