import { readFileSync } from 'node:fs';
import path from 'node:path';
import { BuildError } from '../errors/index.js';

function readAccounts(rootfs: string, file: 'passwd' | 'group'): string[][] {
  try {
    return readFileSync(path.join(rootfs, 'etc', file), 'utf8')
      .split('\n')
      .filter((l) => l && !l.startsWith('#'))
      .map((l) => l.split(':'));
  } catch {
    return [];
  }
}

/**
 * COPY/ADD `--chown=user[:group]` to numeric ids, names looked up in the rootfs being built on.
 * As Docker: a user without a group gets the user's uid as gid when numeric, its primary group when named.
 */
export function resolveChown(spec: string, rootfs: string): { uid: number; gid: number } | undefined {
  if (!spec) return undefined;
  const [u, g] = spec.split(':', 2) as [string, string | undefined];
  let uid: number;
  let primaryGid: number | undefined;
  if (/^\d+$/.test(u)) uid = Number(u);
  else {
    const e = readAccounts(rootfs, 'passwd').find((f) => f[0] === u);
    if (!e) throw new BuildError('ERR_KILN_ARGUMENT', `--chown: unknown user "${u}" (no entry in the image's /etc/passwd)`);
    uid = Number(e[2]);
    primaryGid = Number(e[3]);
  }
  let gid: number;
  if (g === undefined || g === '') gid = primaryGid ?? uid;
  else if (/^\d+$/.test(g)) gid = Number(g);
  else {
    const e = readAccounts(rootfs, 'group').find((f) => f[0] === g);
    if (!e) throw new BuildError('ERR_KILN_ARGUMENT', `--chown: unknown group "${g}" (no entry in the image's /etc/group)`);
    gid = Number(e[2]);
  }
  return { uid, gid };
}
