import { spawnSync } from 'node:child_process';
import { lstatSync, readdirSync, rmdirSync, type Dirent, type Stats } from 'node:fs';
import path from 'node:path';

/**
 * Remove directories from an overlay upper dir that are only copy-ups: empty, not opaque, and identical in mode,
 * owner and mtime to the directory the lower layers have at the same path. overlayfs copies a directory up whenever
 * something inside it is created, even if it is removed again (a mount point stub), so without this a step that
 * changed nothing would still produce a layer with that directory in it. Deepest first, so parents that become
 * empty are looked at too. Returns the relative paths removed.
 *
 * The walk first finds the folders that would go if none were opaque; one `getfattr` then reads the opaque flag of
 * all of them (a RUN step's upper dir usually has a few, runc's mount points), and an opaque folder stays with every
 * folder above it.
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

/** Names getfattr prints as given (it escapes others with backslashes), so its `# file:` lines map back to them. */
const PLAIN_PATH = /^[A-Za-z0-9._/+@:,=-]+$/;
const BATCH = 256;

/**
 * The folders among `rels` (under `upperDir`) with `trusted.overlay.opaque=y`: plain names in one getfattr per 256
 * folders, others one each. A folder getfattr cannot read counts as opaque (it is kept).
 */
function opaqueOf(upperDir: string, rels: string[]): string[] {
  const opaque: string[] = [];
  const plain: string[] = [];
  const odd: string[] = [];
  for (const rel of rels) (PLAIN_PATH.test(path.join(upperDir, rel)) ? plain : odd).push(rel);
  for (let i = 0; i < plain.length; i += BATCH) {
    const batch = plain.slice(i, i + BATCH);
    const r = spawnSync('getfattr', ['--absolute-names', '-e', 'text', '-n', 'trusted.overlay.opaque', ...batch.map((rel) => path.join(upperDir, rel))], { encoding: 'utf8' });
    if (r.error) {
      opaque.push(...batch);
      continue;
    }
    const found = new Map<string, string>();
    let file: string | undefined;
    for (const line of r.stdout.split('\n')) {
      if (line.startsWith('# file: ')) file = line.slice('# file: '.length);
      else if (file !== undefined && line.startsWith('trusted.overlay.opaque=')) found.set(file, line.slice('trusted.overlay.opaque='.length));
    }
    // exit status 1 with "No such attribute" on stderr is the usual answer for folders without it; anything else
    // getfattr complains about keeps the folder
    const failed = r.stderr.split('\n').filter((l) => l && !/: No such attribute$/.test(l));
    for (const rel of batch) {
      const abs = path.join(upperDir, rel);
      if (found.get(abs) === '"y"' || failed.some((l) => l.startsWith(`getfattr: ${abs}:`) || l.startsWith(`${abs}:`))) opaque.push(rel);
    }
  }
  for (const rel of odd) if (isOpaque(path.join(upperDir, rel))) opaque.push(rel);
  return opaque;
}

function isOpaque(abs: string): boolean {
  const r = spawnSync('getfattr', ['--absolute-names', '--only-values', '-n', 'trusted.overlay.opaque', abs], { encoding: 'utf8' });
  // getfattr exits non-zero when the attribute is absent; when it cannot run at all, keep the directory
  if (r.error) return true;
  return r.status === 0 && r.stdout.trim() === 'y';
}
