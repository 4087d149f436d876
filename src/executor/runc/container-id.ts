import { randomBytes } from 'node:crypto';
import { ownerAlive, processStartTime } from '../../proc/index.js';

/** The kiln process that created a container, identified by pid and kernel start time (guards against pid reuse). */
export interface ContainerOwner {
  pid: number;
  startTime: string;
}

const ID_PATTERN = /^kiln-(\d+)-(\d+)-[0-9a-f]+$/;
let selfStartTime: string | undefined;

/** A new container id, unique across parallel runs and processes: `kiln-<pid>-<starttime>-<random>`. */
export function newContainerId(): string {
  selfStartTime ??= processStartTime(process.pid) ?? '0';
  return `kiln-${process.pid}-${selfStartTime}-${randomBytes(8).toString('hex')}`;
}

/** The owner encoded in a container id, or undefined when the id was not made by {@link newContainerId}. */
export function parseContainerId(id: string): ContainerOwner | undefined {
  const m = ID_PATTERN.exec(id);
  return m ? { pid: Number(m[1]), startTime: m[2] } : undefined;
}

/** True while the owning process still runs (same pid and same start time). */
export function isOwnerAlive(owner: ContainerOwner): boolean {
  return ownerAlive(owner);
}

export { processStartTime };
