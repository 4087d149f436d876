import { lstatSync, readlinkSync } from 'node:fs';
import path from 'node:path';
import { BuildError } from '../errors/index.js';
import { cleanPath } from './path-utils.js';

const MAX_LINK_HOPS = 40;

function escapeError(rel: string, via?: string): BuildError {
  const how = via ? ` (through the symlink ${JSON.stringify(via)})` : '';
  return new BuildError('ERR_KILN_CONTEXT_ESCAPE', `path ${JSON.stringify(rel)} leaves the build context${how}`, {
    details: { path: rel, ...(via ? { symlink: via } : {}) },
  });
}

function lstatOrNull(abs: string): import('node:fs').Stats | null {
  try {
    return lstatSync(abs);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return null;
    throw err;
  }
}

/**
 * Resolve `rel` inside `root` and return the real path relative to root ('.' for the root itself).
 * Every directory component that is a symlink is followed, scoped to root; the last component is followed only
 * with `followFinal`. An absolute link target counts from the root (as Docker resolves links in a context);
 * a `..` that climbs above the root, lexically or through a link, throws ERR_KILN_CONTEXT_ESCAPE.
 * Missing components are kept as written. @internal
 */
export function resolveRel(root: string, rel: string, followFinal: boolean): string {
  const lexical = cleanPath(rel.replace(/^\/+/, ''));
  if (lexical === '..' || lexical.startsWith('../')) throw escapeError(rel);
  const pending = lexical === '.' ? [] : lexical.split('/');
  const done: string[] = [];
  let hops = 0;
  let missing = false;
  while (pending.length > 0) {
    const name = pending.shift()!;
    if (name === '' || name === '.') continue;
    if (name === '..') {
      if (done.length === 0) throw escapeError(rel, lexical);
      done.pop();
      continue;
    }
    if (missing || (pending.length === 0 && !followFinal)) {
      done.push(name);
      continue;
    }
    const here = `${root}/${[...done, name].join('/')}`;
    const st = lstatOrNull(here);
    if (!st) missing = true;
    else if (st.isSymbolicLink()) {
      if (++hops > MAX_LINK_HOPS) {
        throw new BuildError('ERR_KILN_CONTEXT_NOT_FOUND', `too many levels of symbolic links resolving ${JSON.stringify(rel)}`, {
          details: { path: rel },
        });
      }
      const target = readlinkSync(here);
      if (target.startsWith('/')) done.length = 0;
      pending.unshift(...target.split('/'));
      continue;
    }
    done.push(name);
  }
  return done.length === 0 ? '.' : done.join('/');
}

/**
 * Join `rel` inside `root`, returning an absolute path. Throws BuildError ERR_KILN_CONTEXT_ESCAPE when the path
 * leaves root lexically (`../x`) or through a symlink being resolved. Symlinked parent directories are always
 * resolved (scoped to root, absolute targets count from root); the last component only with `followSymlinks`.
 *
 * @example
 * resolveInside('/ctx', 'src/main.ts');               // '/ctx/src/main.ts'
 * resolveInside('/ctx', '../etc/passwd');             // throws ERR_KILN_CONTEXT_ESCAPE
 */
export function resolveInside(root: string, rel: string, opts: { followSymlinks?: boolean } = {}): string {
  const absRoot = path.resolve(root);
  const real = resolveRel(absRoot, rel, opts.followSymlinks ?? false);
  return real === '.' ? absRoot : path.join(absRoot, real);
}
