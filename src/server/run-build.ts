import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { normalizeRef, runBuild, validateImageName, type BuildRequest, type BuildResult } from '../engine/index.js';
import type { ImageConfig, Manifest } from '../oci/index.js';
import { parseRegistryRef } from '../registry/index.js';
import type { ProgressEvent, ProgressSink } from '../progress/index.js';
import { prepareTemplateBuild, type TemplateData } from '../sdk/index.js';
import type { ManifestEntry, ServiceStore, Team } from '../service/index.js';
import type { ServerConfig } from './config.js';
import { contextDirFor, materializeContext } from './context.js';
import { serverBuildOptions } from './options.js';
import { baseCredentials, requestToRun } from './credentials.js';
import { BuildMeter } from './usage.js';
import type { TeamSpace, TeamSpaces } from './teams.js';

/** A build as `POST /v1/builds` asks for it (validated by the route's schema). */
export interface BuildSpec {
  /** template name, `NAME` or `NAME:TAG` (default tag latest) */
  name?: string;
  template?: { base: Record<string, unknown>; steps: Array<Record<string, unknown>> };
  dockerfile?: string;
  context: ManifestEntry[];
  buildArgs?: Record<string, string>;
  target?: string;
  noCache?: boolean;
  noCacheFilter?: string[];
  network?: 'default' | 'none';
  ignorePatterns?: string[];
}

/** What a finished build returns: the SDK's BuildInfo shape plus the image's details. */
export interface BuildOutcome {
  name: string;
  tag: string | null;
  digest: string;
  configDigest: string;
  durationMs: number;
  steps: Array<{ name: string; cached: boolean; durationMs: number; missReason?: string }>;
  /** the image as the template view shows it (kept with the build, so an API node without the blobs can answer) */
  image?: ImageSummary;
}

/** Size, start command and ready check of a built image. */
export interface ImageSummary {
  size: number;
  startCmd: string[] | null;
  readyCheck: unknown;
}

/** `NAME[:TAG]` → name and tag, checked against the image-name grammar. */
export function splitTemplateName(n: string): { name: string; tag: string } {
  validateImageName(n, 'name');
  const ref = normalizeRef(n);
  const colon = ref.lastIndexOf(':');
  return { name: ref.slice(0, colon), tag: ref.slice(colon + 1) };
}

/** The image summary of `digest` from a team's store. */
export async function imageSummary(space: TeamSpace, digest: string): Promise<ImageSummary> {
  const manifest = JSON.parse((await space.state.store.read(digest as never)).toString()) as Manifest;
  const config = JSON.parse((await space.state.store.read(manifest.config.digest)).toString()) as ImageConfig;
  const ready = config.config?.Labels?.['kiln.template.ready'];
  const cmd = [...(config.config?.Entrypoint ?? []), ...(config.config?.Cmd ?? [])];
  return {
    size: manifest.config.size + manifest.layers.reduce((n, l) => n + l.size, 0),
    startCmd: cmd.length ? cmd : null,
    readyCheck: ready ? (JSON.parse(ready) as unknown) : null,
  };
}

/**
 * A build's numbered event lines (the `--progress=json` lines), written to the store in order and handed to live
 * listeners at once. A build retried on another worker goes on after the last stored number.
 */
export class BuildEvents {
  readonly listeners = new Set<(seq: number, data: string) => void>();
  private written: Promise<void> = Promise.resolve();
  private failed: unknown;

  constructor(private readonly store: ServiceStore, readonly buildId: string, private seq: number) {}

  static async open(store: ServiceStore, buildId: string): Promise<BuildEvents> {
    return new BuildEvents(store, buildId, await store.lastEventSeq(buildId));
  }

  emit(line: Record<string, unknown>): void {
    const seq = ++this.seq;
    const data = JSON.stringify(line);
    this.written = this.written.then(() => this.store.appendEvent(this.buildId, seq, data)).catch((err: unknown) => void (this.failed ??= err));
    for (const l of this.listeners) l(seq, data);
  }

  /** A progress sink writing the same lines as `--progress=json`. */
  sink(): ProgressSink {
    return {
      setTotal: (n) => this.emit({ type: 'total', steps: n }),
      event: (e: ProgressEvent) => this.emit(e as unknown as Record<string, unknown>),
      finish: () => undefined,
    };
  }

  /** Wait until every line is stored (a store failure is thrown here). */
  async flush(): Promise<void> {
    await this.written;
    if (this.failed) throw this.failed;
  }
}

function outcomeOf(r: BuildResult, name: string, tag: string | null): BuildOutcome {
  return {
    name, tag, digest: r.imageDigest, configDigest: r.configDigest, durationMs: r.durationMs,
    steps: r.steps.map((s) => ({ name: s.name, cached: s.cached, durationMs: s.durationMs, ...(s.missReason ? { missReason: s.missReason } : {}) })),
  };
}

/** The per-team shared cache of a server with `--cache-registry REF`: `REF/<team-id>/cache`. */
export function teamCacheRef(config: ServerConfig, team: Team): string | undefined {
  return config.cacheRegistry ? `${config.cacheRegistry.replace(/\/+$/, '')}/${team.id}/cache` : undefined;
}

/**
 * Run one service build in the team's state root: materialize its context from the uploads, render a template,
 * build with the server's sandbox (and the team's shared registry cache when configured), record the template.
 * The caller serializes builds that share a context folder ({@link contextDirOf}).
 */
export async function executeServiceBuild(o: {
  config: ServerConfig; store: ServiceStore; team: Team; space: TeamSpace; id: string; spec: BuildSpec; events: BuildEvents; signal: AbortSignal;
  /** told of the shared cache's registry traffic (usage metering) */
  onCacheTransfer?: BuildRequest['onCacheTransfer'];
}): Promise<BuildOutcome> {
  const { config, team, space, id, spec } = o;
  const named = spec.name !== undefined ? splitTemplateName(spec.name) : undefined;
  const contextDir = contextDirOf(space, id, spec);
  let cleanup = async (): Promise<void> => undefined;
  if (!named) cleanup = () => fsp.rm(contextDir, { recursive: true, force: true }).then(() => fsp.rm(`${contextDir}.json`, { force: true }));
  try {
    await materializeContext({ dir: contextDir, entries: spec.context, uploads: space.uploads, signal: o.signal });
    let dockerfileText = spec.dockerfile ?? '';
    let steps: Awaited<ReturnType<typeof prepareTemplateBuild>>['steps'] = [];
    let secrets: Awaited<ReturnType<typeof prepareTemplateBuild>>['secrets'] = [];
    if (spec.template) {
      const prepared = await prepareTemplateBuild(spec.template as unknown as TemplateData, config.caBundle ? { caBundle: config.caBundle } : {});
      const prev = cleanup;
      cleanup = async () => { await prepared.cleanup(); await prev(); };
      dockerfileText = prepared.baseText;
      steps = prepared.steps;
      secrets = prepared.secrets;
    }
    const cacheRef = teamCacheRef(config, team);
    // as `kiln build` does: a SOURCE_DATE_EPOCH build arg clamps times, so a rebuild elsewhere is bit for bit the same
    const sde = spec.buildArgs?.SOURCE_DATE_EPOCH;
    const result = await runBuild({
      ...serverBuildOptions(config, {
        team, state: space.state, contextDir, dockerfileText, dockerfileName: path.join(contextDir, 'Dockerfile'),
        tags: named ? [`${named.name}:${named.tag}`] : [], buildArgs: spec.buildArgs ?? {}, ...(spec.target ? { target: spec.target } : {}),
        noCache: spec.noCache === true, noCacheFilter: spec.noCacheFilter ?? [], steps, secrets, ignorePatterns: spec.ignorePatterns ?? [],
        ...(spec.network === 'none' ? { network: 'none' as const } : {}), maxContextBytes: space.limits.uploadBytesPerBuild,
        progress: o.events.sink(), signal: o.signal,
      }),
      ...(cacheRef ? { cacheRegistry: { ref: cacheRef } } : {}),
      ...(o.onCacheTransfer ? { onCacheTransfer: o.onCacheTransfer } : {}),
      ...registryOptions(config, spec),
      ...(sde !== undefined && /^\d+$/.test(sde) ? { sourceDateEpoch: Number(sde) } : {}),
    });
    const outcome: BuildOutcome = { ...outcomeOf(result, named?.name ?? '', named?.tag ?? null), image: await imageSummary(space, result.imageDigest) };
    if (named) await o.store.putTemplate({ teamId: team.id, name: named.name, tag: named.tag, digest: result.imageDigest, buildId: id });
    return outcome;
  } finally {
    await cleanup().catch(() => undefined);
  }
}

/** The engine's registry options of a service build: plain-HTTP hosts, and a template base's credentials for its host. */
function registryOptions(config: ServerConfig, spec: BuildSpec): Pick<BuildRequest, 'registry'> {
  const creds = baseCredentials(spec);
  const ref = spec.template?.base.ref;
  const credentials = creds && typeof ref === 'string' ? { [parseRegistryRef(ref).host]: { username: creds.username, password: creds.password } } : undefined;
  if (!credentials && config.insecureRegistries.length === 0) return {};
  return { registry: { ...(config.insecureRegistries.length ? { insecureHosts: config.insecureRegistries } : {}), ...(credentials ? { credentials } : {}) } };
}

/** The folder a build's context is materialized in: a template's is kept between its builds (stat cache). */
export function contextDirOf(space: TeamSpace, id: string, spec: BuildSpec): string {
  const named = spec.name !== undefined ? splitTemplateName(spec.name) : undefined;
  return contextDirFor(space.root, named ? `template:${named.name}` : `build:${id}`);
}

/**
 * A service build in the team's space of this process: its base images seeded, one build per context folder at once.
 * What it used here (seconds, shared-cache bytes) is recorded as the team's usage, whatever the outcome.
 */
export async function buildInTeamSpace(o: {
  config: ServerConfig; store: ServiceStore; spaces: TeamSpaces; team: Team; id: string; spec: BuildSpec; events: BuildEvents; signal: AbortSignal;
}): Promise<BuildOutcome> {
  const meter = new BuildMeter(o.store, o.team, o.id);
  try {
    // a stored request's sealed base credentials are opened here, for this run only
    const spec = requestToRun(o.spec, { ...(o.config.credentialsKey ? { key: o.config.credentialsKey } : {}), teamId: o.team.id, buildId: o.id });
    const space = await o.spaces.get(o.team);
    await o.spaces.seedBaseImages(space);
    const { spaces: _spaces, ...rest } = o;
    return await o.spaces.withContextLock(contextDirOf(space, o.id, spec), () => executeServiceBuild({ ...rest, spec, space, onCacheTransfer: meter.onTransfer }));
  } finally {
    await meter.record();
  }
}
