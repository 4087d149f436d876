import { readFileSync } from 'node:fs';

/**
 * True while a process with this pid exists (one owned by another user counts: signalling it is refused, not missed).
 *
 * @example
 * pidAlive(process.pid) // true
 */
export function pidAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Field 22 of /proc/<pid>/stat (start time in clock ticks since boot), or undefined when there is no such process.
 * With the pid it names one process for good: a reused pid has another start time.
 */
export function processStartTime(pid: number): string | undefined {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  // the fields after the command name (which may hold spaces and parentheses) start after the last ')'
  return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
}

/** A process named by pid and start time, so that a reused pid is not taken for the one that died. */
export interface ProcessOwner {
  pid: number;
  /** from {@link processStartTime}; '' or '0' when it was not known, then the pid alone decides */
  startTime: string;
}

/** True while the owner still runs: the same pid with the same start time (a zombie, dead and not yet reaped, does not run). */
export function ownerAlive(owner: ProcessOwner): boolean {
  if (!Number.isInteger(owner.pid) || owner.pid <= 0) return false;
  const now = processStartTime(owner.pid);
  return now !== undefined && (owner.startTime === '' || owner.startTime === '0' || owner.startTime === now) && !isZombie(owner.pid);
}

function isZombie(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) === 'Z';
  } catch {
    return false;
  }
}
