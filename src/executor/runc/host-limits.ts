import { readFile } from 'node:fs/promises';
import { ALL_CAPABILITIES, DEFAULT_CAPABILITIES, NOFILE_LIMIT } from '../oci-spec/defaults.js';

const CAP_SYS_RESOURCE = 24n;

/**
 * The RLIMIT_NOFILE a container may get: 1048576, unless kiln lacks CAP_SYS_RESOURCE (as inside some sandboxes)
 * and its own hard limit is lower; the runtime could not raise it and would refuse to start the container.
 */
export async function allowedNofileLimit(): Promise<number> {
  const [status, limits] = await Promise.all([readFile('/proc/self/status', 'utf8'), readFile('/proc/self/limits', 'utf8')]);
  const capEff = /^CapEff:\s*([0-9a-f]+)$/m.exec(status)?.[1];
  if (capEff !== undefined && (BigInt(`0x${capEff}`) >> CAP_SYS_RESOURCE) & 1n) return NOFILE_LIMIT;
  const hard = /^Max open files\s+\S+\s+(\S+)/m.exec(limits)?.[1];
  if (hard === undefined || hard === 'unlimited') return NOFILE_LIMIT;
  return Math.min(NOFILE_LIMIT, Number(hard));
}

/** The capabilities in kiln's own bounding set (a container cannot get more; runc fails on the rest). */
export async function ownCapabilities(): Promise<string[]> {
  const status = await readFile('/proc/self/status', 'utf8').catch(() => '');
  const hex = /^CapBnd:\s*([0-9a-f]+)$/m.exec(status)?.[1];
  if (!hex) return [...DEFAULT_CAPABILITIES];
  const bits = BigInt(`0x${hex}`);
  return ALL_CAPABILITIES.filter((_, i) => (bits >> BigInt(i)) & 1n);
}
