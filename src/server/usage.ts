import { formatUserError } from '../errors/index.js';
import type { ServiceStore, Team } from '../service/index.js';

/** The kinds of metered usage, as the stores keep them (one row per measured quantity). */
export const USAGE_KINDS = {
  /** wall-clock seconds a node spent on a team's build (an attempt a lost worker left counts too: it was spent) */
  buildSeconds: 'build_seconds',
  /** bytes of blobs and manifests a worker pushed to the shared registry cache (steps, base copies, cache mounts) */
  cacheBytesPushed: 'cache_bytes_pushed',
  /** bytes a worker pulled from the shared registry cache */
  cacheBytesPulled: 'cache_bytes_pulled',
  /** bytes of context blobs the API node stored for the team (a blob it already held is not counted again) */
  uploadBytes: 'upload_bytes',
} as const;

/** A team's usage, per kind, since a time (`GET /v1/usage`). */
export interface UsageSummary {
  since: number;
  buildSeconds: number;
  cacheBytesPushed: number;
  cacheBytesPulled: number;
  uploadBytes: number;
}

/** A team's usage since `sinceMs` (default: all time), every kind present (0 when none was recorded). */
export async function usageSummary(store: ServiceStore, teamId: string, sinceMs = 0): Promise<UsageSummary> {
  const sums = await store.usageByKind(teamId, sinceMs);
  const of = (k: string): number => sums[k] ?? 0;
  return {
    since: sinceMs,
    buildSeconds: of(USAGE_KINDS.buildSeconds),
    cacheBytesPushed: of(USAGE_KINDS.cacheBytesPushed),
    cacheBytesPulled: of(USAGE_KINDS.cacheBytesPulled),
    uploadBytes: of(USAGE_KINDS.uploadBytes),
  };
}

/**
 * What one build attempt used on this node, counted while it runs: registry bytes as the shared cache moves them
 * (`onCacheTransfer` of the engine), seconds from `start` to `record`.
 */
export class BuildMeter {
  pushed = 0;
  pulled = 0;
  private readonly started = Date.now();

  constructor(private readonly store: ServiceStore, private readonly team: Team, private readonly buildId: string) {}

  /** the engine's `onCacheTransfer` */
  readonly onTransfer = (t: { direction: 'pushed' | 'pulled'; bytes: number }): void => {
    if (t.direction === 'pushed') this.pushed += t.bytes;
    else this.pulled += t.bytes;
  };

  /** Store what the attempt used (whatever its outcome). A store failure is written to stderr, never thrown. */
  async record(): Promise<void> {
    const rows = [
      { kind: USAGE_KINDS.buildSeconds, quantity: (Date.now() - this.started) / 1000 },
      { kind: USAGE_KINDS.cacheBytesPushed, quantity: this.pushed },
      { kind: USAGE_KINDS.cacheBytesPulled, quantity: this.pulled },
    ];
    for (const r of rows) {
      if (r.quantity <= 0) continue;
      await this.store.addUsage({ teamId: this.team.id, buildId: this.buildId, ...r }).catch((err: unknown) => {
        process.stderr.write(`kiln serve: build ${this.buildId}: recording its usage (${r.kind}): ${formatUserError(err)}\n`);
      });
    }
  }
}

/** Store the bytes of one context blob the node just stored for the team (a failure is written to stderr). */
export async function recordUpload(store: ServiceStore, team: Team, bytes: number): Promise<void> {
  if (bytes <= 0) return;
  await store.addUsage({ teamId: team.id, kind: USAGE_KINDS.uploadBytes, quantity: bytes }).catch((err: unknown) => {
    process.stderr.write(`kiln serve: team ${team.name}: recording upload usage: ${formatUserError(err)}\n`);
  });
}
