import { BuildError } from '../../errors/index.js';
import type { OciUser } from './types.js';

/** One line of /etc/passwd. */
export interface PasswdEntry {
  name: string;
  uid: number;
  gid: number;
  home: string;
}

/** One line of /etc/group. */
export interface GroupEntry {
  name: string;
  gid: number;
  members: string[];
}

/** Inputs of {@link resolveUser}: the USER string and the text of the rootfs's account files (undefined if absent). */
export interface ResolveUserOptions {
  user?: string;
  passwd?: string;
  group?: string;
}

const MAX_ID = 0xffffffff - 1;

/** Parse /etc/passwd text; malformed lines and comments are skipped. */
export function parsePasswd(text: string): PasswdEntry[] {
  const out: PasswdEntry[] = [];
  for (const fields of splitRecords(text)) {
    if (fields.length < 4) continue;
    const uid = parseId(fields[2]);
    const gid = parseId(fields[3]);
    if (uid === undefined || gid === undefined) continue;
    out.push({ name: fields[0], uid, gid, home: fields[5] ?? '' });
  }
  return out;
}

/** Parse /etc/group text; malformed lines and comments are skipped. */
export function parseGroup(text: string): GroupEntry[] {
  const out: GroupEntry[] = [];
  for (const fields of splitRecords(text)) {
    if (fields.length < 3) continue;
    const gid = parseId(fields[2]);
    if (gid === undefined) continue;
    const members = (fields[3] ?? '').split(',').map((m) => m.trim()).filter((m) => m !== '');
    out.push({ name: fields[0], gid, members });
  }
  return out;
}

/**
 * Turn a Dockerfile USER value (`''`, `name`, `uid`, `name:group`, `uid:gid`, mixed forms too) into numeric ids.
 *
 * Follows runc/Docker: a numeric user needs no passwd entry (its group is then 0); a user without an explicit group
 * gets the passwd entry's primary group plus every /etc/group group that lists the user name as a member; an
 * explicit group replaces both. The primary gid is always the first of `additionalGids`, as containerd does.
 *
 * @throws BuildError ERR_KILN_EXEC_USER when a user or group name is not in the rootfs's files.
 * @example resolveUser({ user: 'app', passwd: 'app:x:1000:1000::/home/app:/bin/sh\n' }) // { uid: 1000, gid: 1000, additionalGids: [1000] }
 */
export function resolveUser(opts: ResolveUserOptions): OciUser {
  const spec = (opts.user ?? '').trim();
  const sep = spec.indexOf(':');
  const userPart = (sep === -1 ? spec : spec.slice(0, sep)) || 'root';
  const groupPart = sep === -1 ? '' : spec.slice(sep + 1);
  const passwd = opts.passwd === undefined ? [] : parsePasswd(opts.passwd);
  const groups = opts.group === undefined ? [] : parseGroup(opts.group);

  const numericUid = parseId(userPart);
  const entry = numericUid === undefined
    ? passwd.find((p) => p.name === userPart)
    : passwd.find((p) => p.uid === numericUid);
  if (entry === undefined && numericUid === undefined) {
    if (userPart === 'root') return { uid: 0, gid: groupPart ? lookupGroup(groupPart, groups, opts) : 0, additionalGids: [0] };
    throw userError(`USER ${spec}: no user named "${userPart}" in the image's /etc/passwd`, opts.passwd === undefined);
  }
  const uid = numericUid ?? entry!.uid;
  if (groupPart !== '') {
    const gid = lookupGroup(groupPart, groups, opts);
    return { uid, gid, additionalGids: [gid] };
  }
  const gid = entry?.gid ?? 0;
  const memberOf = entry === undefined ? [] : groups.filter((g) => g.members.includes(entry.name)).map((g) => g.gid);
  return { uid, gid, additionalGids: unique([gid, ...memberOf]) };
}

function lookupGroup(groupPart: string, groups: GroupEntry[], opts: ResolveUserOptions): number {
  const numeric = parseId(groupPart);
  if (numeric !== undefined) return numeric;
  const found = groups.find((g) => g.name === groupPart);
  if (found === undefined) {
    throw userError(`USER ${opts.user}: no group named "${groupPart}" in the image's /etc/group`, opts.group === undefined);
  }
  return found.gid;
}

function userError(message: string, fileMissing: boolean): BuildError {
  return new BuildError('ERR_KILN_EXEC_USER', fileMissing ? `${message} (the file does not exist)` : message);
}

function* splitRecords(text: string): Generator<string[]> {
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    yield line.split(':');
  }
}

function parseId(s: string | undefined): number | undefined {
  if (s === undefined || !/^\d+$/.test(s)) return undefined;
  const n = Number(s);
  return n <= MAX_ID ? n : undefined;
}

function unique(ids: number[]): number[] {
  return [...new Set(ids)];
}
