/**
 * `--chmod` values: octal ('755', '4755') or chmod(1) symbolic clauses ('u+x', 'u=rwX,go=rX', '+x', 'g=u'),
 * applied with a zero umask as BuildKit does.
 * @internal
 */
import { BuildError } from '../../errors/index.js';

/** A parsed --chmod. */
export interface ChmodSpec {
  /** the fixed mode when the value was octal */
  octal?: number;
  /** new permission bits (0o7777) for an entry with `mode` (permission bits) that is or is not a directory */
  apply(mode: number, isDir: boolean): number;
}

const SYMBOLIC = /^[ugoa]*(?:[-+=](?:[rwxXst]*|[ugo]))+$/;

/** Parse a --chmod value; throws BuildError ERR_KILN_COPY_OPTION when it is neither octal nor symbolic. */
export function parseChmod(value: string): ChmodSpec {
  if (/^[0-7]+$/.test(value)) {
    const octal = parseInt(value, 8);
    if (octal > 0o7777) throw badChmod(value);
    return { octal, apply: () => octal };
  }
  if (/^[0-9]+$/.test(value)) throw badChmod(value);
  const clauses = value.split(',');
  if (clauses.some((c) => !SYMBOLIC.test(c))) {
    throw new BuildError('ERR_KILN_COPY_OPTION', `invalid --chmod value '${value}'`);
  }
  return { apply: (mode, isDir) => clauses.reduce((m, c) => applyClause(c, m, mode, isDir), mode & 0o7777) };
}

function badChmod(value: string): BuildError {
  return new BuildError(
    'ERR_KILN_COPY_OPTION',
    `invalid chmod parameter: '${value}'. it should be octal string and between 0 and 07777`,
  );
}

const CLASS_SHIFT = { u: 6, g: 3, o: 0 } as const;

function applyClause(clause: string, current: number, original: number, isDir: boolean): number {
  let i = 0;
  let who = '';
  while (i < clause.length && 'ugoa'.includes(clause[i])) who += clause[i++];
  if (who === '' || who.includes('a')) who = 'ugo';
  let mode = current;
  while (i < clause.length) {
    const op = clause[i++];
    let perms = '';
    while (i < clause.length && !'-+='.includes(clause[i])) perms += clause[i++];
    const bits = permBits(perms, who, mode, original, isDir);
    const mask = whoMask(who);
    if (op === '+') mode |= bits;
    else if (op === '-') mode &= ~bits;
    else mode = (mode & ~mask) | bits;
  }
  return mode;
}

/** all bits '=' may clear for these classes */
function whoMask(who: string): number {
  let m = 0;
  for (const w of who) {
    m |= 0o7 << CLASS_SHIFT[w as 'u' | 'g' | 'o'];
    if (w === 'u') m |= 0o4000;
    if (w === 'g') m |= 0o2000;
  }
  return m;
}

function permBits(perms: string, who: string, mode: number, original: number, isDir: boolean): number {
  let rwx = 0;
  let special = 0;
  if (perms.length === 1 && 'ugo'.includes(perms)) {
    rwx = (mode >> CLASS_SHIFT[perms as 'u' | 'g' | 'o']) & 0o7;
  } else {
    for (const p of perms) {
      if (p === 'r') rwx |= 4;
      else if (p === 'w') rwx |= 2;
      else if (p === 'x') rwx |= 1;
      else if (p === 'X') rwx |= isDir || (original & 0o111) !== 0 ? 1 : 0;
      else if (p === 's') special |= (who.includes('u') ? 0o4000 : 0) | (who.includes('g') ? 0o2000 : 0);
      else if (p === 't') special |= 0o1000;
    }
  }
  let bits = special;
  for (const w of who) bits |= rwx << CLASS_SHIFT[w as 'u' | 'g' | 'o'];
  return bits;
}
