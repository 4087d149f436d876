import { spawnSync } from 'node:child_process';
import { lstatSync, readdirSync, rmdirSync, type Dirent, type Stats } from 'node:fs';
import path from 'node:path';

/**
 * Remove directories from an overlay upper dir that are only copy-ups: empty, not opaque, and identical in mode,
 * owner and mtime to the directory the lower layers have at the same path. overlayfs copies a directory up whenever
 * something inside it is created, even if it is removed again (a mount point stub), so without this a step that
 * changed nothing would still produce a layer with that directory in it. Deepest first, so parents that become
 * empty are looked at too. Returns the relative paths removed.
 */
export function dropCopyUps(upperDir: string, lowerDirs: string[]): string[] {
  const removed: string[] = [];
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
    const mine = lstatSync(abs);
    const lower = lowerDir(lowerDirs, rel);
    if (!lower || !sameDir(mine, lower) || isOpaque(abs)) return false;
    rmdirSync(abs);
    removed.push(rel);
    return true;
  };
  visit('');
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

function isOpaque(abs: string): boolean {
  const r = spawnSync('getfattr', ['--absolute-names', '--only-values', '-n', 'trusted.overlay.opaque', abs], { encoding: 'utf8' });
  // getfattr exits non-zero when the attribute is absent; when it cannot run at all, keep the directory
  if (r.error) return true;
  return r.status === 0 && r.stdout.trim() === 'y';
}
