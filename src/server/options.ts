import type { BuildRequest, State } from '../engine/index.js';
import type { SecretSource } from '../graph/index.js';
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
  /** a template's steps after the Dockerfile text (its base) */
  steps?: BuildRequest['steps'];
  secrets: SecretSource[];
  ignorePatterns: string[];
  /**
   * the client's network: from a remote client only `none` is taken (the server's policy may only be made
   * stricter); a local hand-off's `none` or `isolated` is used as the in-process build would
   */
  network?: 'none' | 'isolated';
  /** none: no limit (a local hand-off, whose context is on this machine) */
  maxContextBytes?: number;
  /** a local hand-off (ROOT/kiln.sock, root only): the caller's own network choice, as in-process */
  local?: boolean;
  /** the server's watched context trees (local hand-offs only: their contexts stay on this machine) */
  contextWatch?: BuildRequest['contextWatch'];
  progress: ProgressSink;
  signal: AbortSignal;
}

/**
 * The ONE place where a service build's engine options are made: every build `kiln serve` runs (remote or local
 * hand-off) goes through here. Remote builds get the server's sandbox: its network (default `isolated`: each RUN in
 * its own network namespace with no route to the host's loopback), `RUN --network=host` only if `allowHostNetwork`,
 * `RUN --security=insecure` only if `allowInsecure`, and the server's resource limits. A client may only ask for a
 * stricter network (`none`). A local hand-off (root on this machine, ROOT/kiln.sock) keeps the CLI's defaults.
 */
export function serverBuildOptions(config: ServerConfig, r: ServerBuildRequest): BuildRequest {
  const network: 'host' | 'none' | 'isolated' | undefined = r.network === 'none' ? 'none' : r.local === true ? r.network : config.network;
  const limits = r.local === true ? undefined : config.limits;
  return {
    state: r.state,
    ...(r.local === true && r.contextWatch ? { contextWatch: r.contextWatch } : {}),
    contextDir: r.contextDir,
    ...(r.dockerfileName ? { dockerfile: r.dockerfileName } : {}),
    ...(r.dockerfileText !== undefined ? { dockerfileText: r.dockerfileText } : {}),
    tags: r.tags,
    buildArgs: r.buildArgs,
    ...(r.target ? { target: r.target } : {}),
    noCache: r.noCache,
    noCacheFilter: r.noCacheFilter,
    ...(r.steps?.length ? { steps: r.steps } : {}),
    secrets: r.secrets,
    ignorePatterns: r.ignorePatterns,
    ...(network ? { network } : {}),
    ...(r.local !== true && config.allowHostNetwork ? { allowHostNetwork: true } : {}),
    ...(r.local !== true && config.allowInsecure ? { allowInsecure: true } : {}),
    ...(limits && Object.keys(limits).length > 0 ? { limits } : {}),
    ...(r.maxContextBytes !== undefined ? { maxContextBytes: r.maxContextBytes } : {}),
    progress: r.progress,
    signal: r.signal,
  };
}
