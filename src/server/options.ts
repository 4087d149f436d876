import type { BuildRequest, State } from '../engine/index.js';
import type { SecretSource } from '../ops/index.js';
import type { ProgressSink } from '../progress/index.js';
import type { Team } from '../service/index.js';
import type { ServerConfig } from './config.js';

/** What one service build asks for, after its context was materialized in the team's state root. */
export interface ServerBuildRequest {
  team: Team;
  state: State;
  contextDir: string;
  /** absent: read from `dockerfileName` (a local hand-off of a Dockerfile build) */
  dockerfileText?: string;
  /** the Dockerfile's path (display name when the text is given); absent: CONTEXT/Dockerfile */
  dockerfileName?: string;
  tags: string[];
  buildArgs: Record<string, string>;
  target?: string;
  noCache: boolean;
  noCacheFilter: string[];
  noCacheLines: number[];
  secrets: SecretSource[];
  ignorePatterns: string[];
  /** `network: 'none'` asked for by the client; the server's policy may only make it stricter */
  network?: 'none';
  /** none: no limit (a local hand-off, whose context is on this machine) */
  maxContextBytes?: number;
  /** a local hand-off (ROOT/kiln.sock, root only): the caller's own network choice, as in-process */
  local?: boolean;
  progress: ProgressSink;
  signal: AbortSignal;
}

/**
 * The ONE place where a service build's engine options are made: every build `kiln serve` runs (remote or local
 * hand-off) goes through here. The sandboxing fields of the config (`network: 'isolated'`, `allowHostNetwork`,
 * `allowInsecure`, `limits`) belong to engine options the `confine` work adds; until those exist the engine has no
 * such fields, so 'isolated' is approximated by `network: 'none'` for RUN steps, and `allowInsecure` / `limits` are
 * not applied yet (wire them in here when the engine gains them).
 */
export function serverBuildOptions(config: ServerConfig, r: ServerBuildRequest): BuildRequest {
  const hostAllowed = r.local === true || (config.network === 'host' && config.allowHostNetwork);
  const network: 'none' | undefined = r.network === 'none' || !hostAllowed ? 'none' : undefined;
  return {
    state: r.state,
    contextDir: r.contextDir,
    ...(r.dockerfileName ? { dockerfile: r.dockerfileName } : {}),
    ...(r.dockerfileText !== undefined ? { dockerfileText: r.dockerfileText } : {}),
    tags: r.tags,
    buildArgs: r.buildArgs,
    ...(r.target ? { target: r.target } : {}),
    noCache: r.noCache,
    noCacheFilter: r.noCacheFilter,
    noCacheLines: r.noCacheLines,
    secrets: r.secrets,
    ignorePatterns: r.ignorePatterns,
    ...(network ? { network } : {}),
    ...(r.maxContextBytes !== undefined ? { maxContextBytes: r.maxContextBytes } : {}),
    progress: r.progress,
    signal: r.signal,
  };
}
