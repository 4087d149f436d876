import { existsSync } from 'node:fs';
import { BuildError } from '../errors/index.js';
import { runAutoGc } from './auto.js';
import { readConfigFile, resolveHistoryPolicy, type HistoryPolicy } from './config.js';
import type { GcState } from './inventory.js';
import type { BuildLease } from '../cache/index.js';

/** History settings of a state directory (`history` in `<root>/config.json`, with defaults). */
export function historyPolicy(root: string): HistoryPolicy {
  return resolveHistoryPolicy(readConfigFile(root).history);
}

/**
 * Protect freshly written image blobs (manifest, config) and report whether they are all still on disk. Run in one
 * transaction with prune's per-blob check, so a `false` means prune removed a deduplicated blob just before: write
 * it again (it is protected now).
 */
export function pinBlobs(s: GcState, lease: BuildLease, digests: string[]): boolean {
  return s.db.transaction(() => {
    lease.addBlobs(digests);
    return digests.every((d) => existsSync(s.store.path(d as `sha256:${string}`)));
  });
}

/**
 * After a successful build: automatic GC (while the build's lease still protects what it used), one log line of what
 * was removed, then close the log and drop the lease. A GC failure is reported, never fails the build.
 */
export async function finishBuild(opts: {
  state: GcState;
  lease: BuildLease;
  log?: { note(line: string): void; close(): Promise<void> };
  progress?: { event(e: { type: 'info'; message: string; at: number }): void };
  signal?: AbortSignal;
  /** every step of the build was cached (the GC may skip its inventory; see runAutoGc) */
  ranNothing?: boolean;
}): Promise<string | undefined> {
  let line: string | undefined;
  try {
    const r = await runAutoGc(opts.state, { selfLeaseId: opts.lease.id, ...(opts.signal ? { signal: opts.signal } : {}), ...(opts.ranNothing ? { ranNothing: true } : {}) });
    line = r.line;
  } catch (err) {
    line = `gc: skipped: ${err instanceof BuildError || err instanceof Error ? err.message : String(err)}`;
  }
  if (line) {
    opts.progress?.event({ type: 'info', message: line, at: Date.now() });
    opts.log?.note(line);
  }
  await abandonBuild(opts);
  return line;
}

/** After a failed build: close the log, drop the lease. */
export async function abandonBuild(opts: { lease: BuildLease; log?: { close(): Promise<void> } }): Promise<void> {
  opts.lease.release();
  await opts.log?.close().catch(() => undefined);
}
