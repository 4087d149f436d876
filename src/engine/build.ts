import { randomBytes } from 'node:crypto';
import { existsSync, promises as fsp } from 'node:fs';
import path from 'node:path';
import { BuildError, formatUserError, isBuildError, isNoSpace, isNotFound } from '../errors/index.js';
import type { Descriptor, Digest, ImageConfig } from '../oci/index.js';
import { convertDockerfile, type ProgramStep } from '../frontend/dockerfile/convert/index.js';
import { closure, solve, type SolveEvent, type VertexResult } from '../solver/index.js';
import { createOpRunner, type BuildLimits, type LocalContext, type LocalImage } from '../ops/index.js';
import { createPatternMatcher, MAX_DOCKERFILE_BYTES, readBoundedText, readIgnorePatterns, walkContext, type ContextWatch, type ResolvedSources } from '../context/index.js';
import { writeDockerArchive, writeOciLayout } from '../exporter/index.js';
import type { ProgressSink } from '../progress/index.js';
import { trace } from '../progress/index.js';
import { processOwner, type State } from './state.js';
import { validateImageName } from './image-name.js';
import { proveStartCommand, type StartCheck } from './start-check.js';
import { exportRootfs, layerCache } from './rootfs.js';
import { loadLocalImage, normalizeRef, pullToState, registerLayers, resolveImage, writeImage, type PullOptions } from './images.js';
import type { BuildGraph, SecretSource } from '../graph/index.js';
import { parseRegistryRef, pushImage, RegistryClient, type RegistryOptions } from '../registry/index.js';
import { exportCache, importCache, inlineCache, INLINE_CACHE_FIELD, type CacheExportReport, type CacheExportSpec, type CacheImportReport, type CacheImportSpec, type CacheRegistrySpec, type RegistryTransfer } from '../cache-io/index.js';
import { openSharedCache, type SharedCache, type SharedCacheReport } from './shared-cache.js';
import { failureOf, recordFailure, stallGuard, watchStall, type BuildRecordDraft } from './build-failure.js';
import { createCacheWriteBatch, leasedCacheIndex, type CacheWriteBatch } from './cache-writes.js';
import { buildHistory, cacheKeys, imageCreated, stepTimes } from './image-history.js';
import type { ApplyLangCacheOptions } from '../langcache/index.js';
import { abandonBuild, finishBuild, historyPolicy, pinBlobs } from '../gc/index.js';
import { acquireLease, type BuildLease } from '../cache/index.js';
import { explainSolve, openBuildLog, type BuildLog } from '../explain/index.js';
import { formatFinding, secretWarnings } from '../check/index.js';

export interface BuildOutput {
  /** image archives (`oci`, `docker`, `oci-dir`), or the final filesystem (`local` into a folder, `tar` as one tar) */
  type: 'oci' | 'docker' | 'oci-dir' | 'local' | 'tar';
  dest: string;
  /** the image's names in the archive (`name=` of `--output`); default the build's tags */
  names?: string[];
}

/** One `--build-context NAME=VALUE`: a local folder (`dir`, read with its own `.dockerignore`) or an image reference. */
export type NamedContextSpec = { type: 'local'; dir: string } | { type: 'image'; ref: string };

export interface BuildRequest {
  state: State;
  /** a long-lived process's watched context trees (kiln serve): unchanged context sources are not walked again */
  contextWatch?: ContextWatch<ResolvedSources>;
  /** `--ulimit`: rlimits of every RUN step */
  ulimits?: Array<{ name: string; soft: number; hard: number }>;
  /** `--shm-size`: /dev/shm of every RUN step, bytes */
  shmSizeBytes?: number;
  /** `--add-host HOST:IP`: /etc/hosts lines of every RUN step */
  extraHosts?: Array<{ host: string; ip: string }>;
  /** `--label K=V`: labels set on the final image's config */
  labels?: Record<string, string>;
  /** a template's start command: proven at the end of the build (run until its ready check passes), cached by image */
  startCheck?: StartCheck;
  /**
   * `--pull`: look every base image up in its registry again (the tag re-resolved, new layers fetched) even when the
   * local store has it, as buildx; without it a local image is used as it is
   */
  pull?: boolean;
  /** `--build-context NAME=VALUE`: a local folder or an image standing in for the stage or image called NAME */
  namedContexts?: Record<string, NamedContextSpec>;
  /** the target platform (`--platform`); only this machine's own is built (checked by the caller) */
  platform?: { os: string; architecture: string; variant?: string };
  contextDir: string;
  /** path of the Dockerfile (default CONTEXT/Dockerfile) */
  dockerfile?: string;
  /** Dockerfile text given directly (then `dockerfile` is only its display name) */
  dockerfileText?: string;
  tags: string[];
  buildArgs: Record<string, string>;
  target?: string;
  noCache?: boolean;
  noCacheFilter?: string[];
  secrets?: SecretSource[];
  outputs?: BuildOutput[];
  progress: ProgressSink;
  /** extra ignore patterns on top of .dockerignore */
  ignorePatterns?: string[];
  sourceDateEpoch?: number;
  /**
   * network of RUN steps without `--network` (default host, Docker's default for local builds). `isolated` (what
   * `kiln serve` uses): each RUN in its own network namespace with egress through slirp4netns and no route to the
   * host's loopback; a `RUN --network=host` is then refused unless `allowHostNetwork`.
   */
  network?: 'host' | 'none' | 'isolated';
  /** with `network: 'isolated'`: let `RUN --network=host` share the host's network (a server's config decides) */
  allowHostNetwork?: boolean;
  /** accept `RUN --security=insecure` (a server's config decides; the CLI never sets it) */
  allowInsecure?: boolean;
  /** resource limits of every RUN step, and the build's own time limit (`buildTimeoutMs`) */
  limits?: BuildLimits;
  /**
   * steps after the Dockerfile's last instruction: typed instruction records, each located at its source (an SDK
   * template's steps, at the caller's file and line; the Dockerfile text is then its base), and `noCache`
   */
  steps?: ProgramStep[];
  /** `--cache-from`: imported (verified) into the local cache before solving */
  cacheFrom?: CacheImportSpec[];
  /** `--cache-to`: exported after the image is written (inline: into its config; `mounts`: cache mounts too) */
  cacheTo?: CacheExportSpec[];
  /**
   * `--cache-registry`: the shared per-step cache. Every local miss is looked up in the registry (record + layer,
   * verified), every step that ran is pushed there in the background (the build waits for the pushes before it
   * returns), base images are kept there under their names, and cache mounts travel with it (`mounts`, default on).
   * A `kiln serve` worker passes `{ ref: 'HOST/TEAM/cache' }`, the repository being the team's namespace.
   */
  cacheRegistry?: CacheRegistrySpec;
  /**
   * told of every blob and manifest body the shared cache (`cacheRegistry`, and cache mounts of `cacheFrom`/`cacheTo`)
   * moves to or from its registry, as it is moved; the pushes and pulls of `--push` and base images are not counted
   * (a service meters a team's shared-cache traffic with it)
   */
  onCacheTransfer?: (t: RegistryTransfer) => void;
  /** image refs to push the result to (`--push`, `--output type=registry,name=REF`) */
  push?: string[];
  /** plain-HTTP hosts and credentials for pulls, pushes and registry caches */
  registry?: RegistryOptions;
  /** language caches (/cache layout) on every RUN, env in the image config; `warm` copies them into the image */
  langCache?: ApplyLangCacheOptions;
  signal?: AbortSignal;
  /**
   * Largest build context accepted, in bytes of file content after .dockerignore (the service sets it): the walk
   * stops with ERR_KILN_LIMIT_EXCEEDED as soon as it is passed. Default: no limit.
   */
  maxContextBytes?: number;
}

export interface StepReport {
  name: string;
  cached: boolean;
  durationMs: number;
  stage: string;
  line?: number;
  key: string;
  /** the layer the step added (null: none), as the cache supplied it or the step produced it */
  diffId: string | null;
  missReason?: string;
  /** a hit brought in from the shared cache (`cacheRegistry`) */
  remote?: boolean;
}

export interface BuildResult {
  buildId: string;
  imageDigest: Digest;
  configDigest: Digest;
  config: ImageConfig;
  steps: StepReport[];
  durationMs: number;
  cacheImport?: CacheImportReport;
  cacheExports?: CacheExportReport[];
  /** what the shared cache did (`cacheRegistry`, mounts of `cacheFrom`/`cacheTo`) */
  sharedCache?: SharedCacheReport;
}

/** What one build's phases share. */
interface BuildRun {
  req: BuildRequest;
  s: State;
  buildId: string;
  started: number;
  record: DraftRecord;
  lease: BuildLease;
  buildLog: BuildLog;
  /** one client per build: tokens and known blob locations are shared by pulls, cache import/export and pushes */
  registry: () => RegistryClient;
  shared: SharedCache | undefined;
  cacheWrites?: CacheWriteBatch;
  /** what `--cache-from` brought in before the solve */
  cacheImport?: CacheImportReport;
  /** the named local contexts (`--build-context NAME=DIR`) with their ignore patterns */
  localContexts?: Map<string, LocalContext>;
}

/** The Dockerfile and context of a build, read and checked. */
interface BuildInput {
  contextDir: string;
  dockerfilePath: string;
  displayName: string;
  text: string;
}

type DraftRecord = BuildRecordDraft & { steps: Array<Record<string, unknown>> };

/** Run one build: Dockerfile → graph → solve (cache or execute) → image → tags/outputs → history. */
export async function runBuild(request: BuildRequest): Promise<BuildResult> {
  const timeout = buildTimeout(request);
  try {
    return await runBuildWithin(timeout ? { ...request, signal: timeout.signal } : request);
  } finally {
    timeout?.release();
  }
}

/** `limits.buildTimeoutMs` as an abort signal (joined with the caller's) whose reason names the limit. */
function buildTimeout(req: BuildRequest): { signal: AbortSignal; release(): void } | undefined {
  const ms = req.limits?.buildTimeoutMs;
  if (!ms) return undefined;
  const ctl = new AbortController();
  const timer = setTimeout(() => ctl.abort(new BuildError('ERR_KILN_LIMIT_EXCEEDED', `the build ran longer than its time limit of ${ms / 1000} s and was stopped (--build-timeout)`, { details: { limit: 'build-time' } })), ms);
  const onAbort = (): void => ctl.abort(req.signal?.reason);
  req.signal?.addEventListener('abort', onAbort, { once: true });
  if (req.signal?.aborted) onAbort();
  return {
    signal: ctl.signal,
    release: () => {
      clearTimeout(timer);
      req.signal?.removeEventListener('abort', onAbort);
    },
  };
}

async function runBuildWithin(req: BuildRequest): Promise<BuildResult> {
  const s = req.state;
  const started = Date.now();
  const buildId = `${started.toString(36)}${randomBytes(4).toString('hex')}`;
  for (const t of req.tags) validateImageName(t, '-t'); // refused before anything is built
  for (const t of req.push ?? []) validateImageName(t, 'push');
  const input = await readBuildInput(req);
  const record = newBuildRecord(req, buildId, started, input);
  s.db.builds.putBuild(record);
  const onStall = stallGuard(s, record);
  watchStall(onStall, true);
  let client: RegistryClient | undefined;
  const registry = (): RegistryClient => (client ??= new RegistryClient(req.registry));
  const b: BuildRun = {
    req, s, buildId, started, record, registry,
    lease: acquireLease(s.db.leases), // prune/GC leave what this build uses alone (src/cache leases, honoured by src/gc)
    buildLog: openBuildLog({ root: s.root, buildId, maxBytes: historyPolicy(s.root).maxLogBytes }),
    shared: openShared(req, s, registry),
  };
  try {
    return await buildAndDeliver(b, input);
  } catch (caught) {
    throw await failBuild(b, caught);
  } finally {
    watchStall(onStall, false);
  }
}

async function readBuildInput(req: BuildRequest): Promise<BuildInput> {
  const contextDir = path.resolve(req.contextDir);
  if (!existsSync(contextDir)) throw new BuildError('ERR_KILN_ARGUMENT', `build context "${req.contextDir}" does not exist`);
  const dockerfilePath = req.dockerfile ? path.resolve(req.dockerfile) : path.join(contextDir, 'Dockerfile');
  let text = req.dockerfileText;
  if (text === undefined) {
    // a regular file under the size limit: a FIFO or `-f /dev/zero` is refused at once, naming the file
    const read = await readBoundedText({ file: dockerfilePath, what: 'Dockerfile', maxBytes: MAX_DOCKERFILE_BYTES });
    if (read === null) throw new BuildError('ERR_KILN_DOCKERFILE_NOT_FOUND', `cannot read Dockerfile "${dockerfilePath}": no such file`);
    text = read;
  }
  return { contextDir, dockerfilePath, displayName: req.dockerfile ?? 'Dockerfile', text };
}

function newBuildRecord(req: BuildRequest, id: string, started: number, input: BuildInput): DraftRecord {
  return {
    id,
    started,
    finished: null,
    status: 'running',
    target: req.target ?? '',
    context: input.contextDir,
    dockerfile: input.dockerfilePath,
    args: redactArgs(req.buildArgs),
    tags: req.tags,
    imageDigest: null,
    steps: [],
    error: null,
    owner: processOwner(),
  };
}

/** The shared cache of `--cache-registry`, or of cache mounts travelling with `--cache-from`/`--cache-to`. */
function openShared(req: BuildRequest, s: State, registry: () => RegistryClient): SharedCache | undefined {
  const sharesMounts = [...(req.cacheFrom ?? []), ...(req.cacheTo ?? [])].some((c) => c.type === 'registry' && c.mounts);
  if (!req.cacheRegistry && !sharesMounts) return undefined;
  return openSharedCache({
    state: s, client: registry, info: (m) => info(req, m),
    ...(req.cacheRegistry ? { cacheRegistry: req.cacheRegistry } : {}),
    ...(req.cacheFrom ? { cacheFrom: req.cacheFrom } : {}),
    ...(req.cacheTo ? { cacheTo: req.cacheTo } : {}),
    ...(req.onCacheTransfer ? { onTransfer: req.onCacheTransfer } : {}),
    ...(req.signal ? { signal: req.signal } : {}),
  });
}

/** The build proper: graph, solve, image, outputs, cache exports, history record. */
async function buildAndDeliver(b: BuildRun, input: BuildInput): Promise<BuildResult> {
  const { req, s } = b;
  const ignorePatterns = [...(await readIgnorePatterns({ contextDir: input.contextDir, dockerfilePath: input.dockerfilePath })), ...(req.ignorePatterns ?? [])];
  if (req.maxContextBytes !== undefined) {
    await walkContext({ dir: input.contextDir, excludePatterns: ignorePatterns, maxBytes: req.maxContextBytes, ...(req.signal ? { signal: req.signal } : {}) });
  }
  b.localContexts = await localContexts(req);
  const graph = await buildGraph(b, input);
  const needed = closure(graph.vertices, graph.target.vertex).filter((id) => !graph.vertices.get(id)!.hidden);
  const results = await solveGraph(b, graph, needed, input, ignorePatterns);
  const { img, config, keys } = await assembleImage(b, graph, results);
  // a start command that never comes up fails the build before the image is named or exported
  const startStep = req.startCheck ? await runStartCheck(req, img.manifest.digest, config) : undefined;
  await deliverImage(b, img.manifest.digest, img.config.digest, config.rootfs.diff_ids);
  const cacheExports = await exportCaches(b, keys);
  const steps = stepReports(graph, needed, results);
  if (startStep) steps.push(startStep);
  const sharedCache = b.shared ? await b.shared.finish() : undefined;
  if (sharedCache && req.cacheRegistry) {
    info(req, `shared cache ${req.cacheRegistry.ref}: ${sharedCache.hits ?? 0} steps from the registry (${sharedCache.bytesFetched ?? 0} bytes), ${sharedCache.pushed ?? 0} pushed, ${sharedCache.basesPushed ?? 0} base images pushed`);
  }
  const why = explainSolve({ db: s.db, record: b.record, needed, vertices: graph.vertices, results, skipReason: req.noCache ? '--no-cache' : 'no-cache filter' });
  steps.forEach((st, i) => why[i] && (st.missReason = why[i]));
  Object.assign(b.record, { status: 'success', finished: Date.now(), imageDigest: img.manifest.digest, steps: steps as unknown as Array<Record<string, unknown>> });
  s.db.builds.putBuild(b.record);
  const gcStart = { at: Date.now(), cpu: process.cpuUsage() };
  await finishBuild({ state: s, lease: b.lease, log: b.buildLog, progress: req.progress, ranNothing: steps.every((st) => st.cached) });
  const gcCpu = process.cpuUsage(gcStart.cpu);
  trace(`post-build gc: ${Date.now() - gcStart.at} ms wall, ${Math.round((gcCpu.user + gcCpu.system) / 1000)} ms cpu`);
  req.progress.finish(true);
  return {
    buildId: b.buildId, imageDigest: img.manifest.digest, configDigest: img.config.digest, config, steps, durationMs: Date.now() - b.started,
    ...(b.cacheImport ? { cacheImport: b.cacheImport } : {}), ...(cacheExports.length ? { cacheExports } : {}), ...(sharedCache ? { sharedCache } : {}),
  };
}

/** The Dockerfile (and an SDK template's steps) as a graph, the build-wide options (network, language caches) applied. */
async function buildGraph(b: BuildRun, input: BuildInput): Promise<BuildGraph> {
  const { req, s, shared, lease } = b;
  warnSecretsInArgs(req, { text: input.text, file: input.displayName });
  const pulls = new Map<string, Promise<LocalImage>>();
  const pulledOnce = (ref: string, pull: () => Promise<LocalImage>): Promise<LocalImage> => {
    const key = normalizeRef(ref);
    if (!pulls.has(key)) pulls.set(key, pull());
    return pulls.get(key)!;
  };
  const graph = await convertDockerfile({
    text: input.text,
    file: input.displayName,
    buildArgs: req.buildArgs,
    ...(req.steps?.length ? { steps: req.steps } : {}),
    ...(req.allowInsecure ? { allowInsecure: true } : {}),
    ...(req.namedContexts ? { namedContexts: Object.fromEntries(Object.entries(req.namedContexts).map(([n, c]) => [n, c.type === 'image' ? c : { type: 'local' as const }])) } : {}),
    images: {
      resolve: async (ref) => {
        const pull = { client: b.registry, onPull: (r: string) => info(req, `pulling ${r}`), ...(req.signal ? { signal: req.signal } : {}) };
        // --pull: the registry first, always; with a shared cache: this machine's store, then the team's copy under
        // the name, then the name's registry
        const img = req.pull ? await pulledOnce(ref, () => pullFresh(req, s, ref, pull)) : shared ? await resolveShared(s, ref, shared, pull) : await resolveImage(s, ref, pull);
        shared?.noteBase(ref, img.manifestDigest);
        registerLayers(s, img.manifest, img.config);
        lease.addLayers(img.config.rootfs.diff_ids);
        lease.addBlobs([img.manifestDigest, img.manifest.config.digest, ...img.manifest.layers.map((l) => l.digest)]);
        return { manifest: img.manifestDigest, config: img.config, ref: img.ref };
      },
    },
    ...(req.target ? { target: req.target } : {}),
    ...(req.platform ? { platform: req.platform } : {}),
    ...(req.noCache ? { noCache: true } : {}),
    ...(req.noCacheFilter ? { noCacheFilter: req.noCacheFilter } : {}),
    // `kiln build --network` is part of every RUN's definition, so it is part of its cache key
    ...(req.network ? { network: req.network } : {}),
    ...(req.allowHostNetwork ? { allowHostNetwork: true } : {}),
    ...(req.langCache ? { langCache: req.langCache } : {}),
    ...(req.signal ? { signal: req.signal } : {}),
  });
  for (const w of graph.warnings ?? []) info(req, w);
  return graph;
}

/** `--pull`: the base as its registry has it now (a changed tag brings the new image), said on the progress output. */
async function pullFresh(req: BuildRequest, s: State, ref: string, pull: PullOptions): Promise<LocalImage> {
  try {
    const img = await pullToState(s, ref, { ...pull, onPull: () => undefined });
    info(req, `pulled ${normalizeRef(ref)} (${img.manifestDigest})`);
    return img;
  } catch (err) {
    throw new BuildError('ERR_KILN_IMAGE_NOT_FOUND', `--pull: cannot look up "${ref}" in its registry: ${(err as Error).message}`, {
      hint: 'check the registry (--insecure-registry, --registry-auth), or build without --pull to use the local image',
      cause: err,
    });
  }
}

/** Each `--build-context NAME=DIR` with its own `.dockerignore` (at the folder's root, as BuildKit reads it). */
async function localContexts(req: BuildRequest): Promise<Map<string, LocalContext>> {
  const out = new Map<string, LocalContext>();
  for (const [name, c] of Object.entries(req.namedContexts ?? {})) {
    if (c.type !== 'local') continue;
    const contextDir = path.resolve(c.dir);
    if (!existsSync(contextDir)) throw new BuildError('ERR_KILN_ARGUMENT', `--build-context ${name}=${c.dir}: the folder does not exist`);
    const ignorePatterns = await readIgnorePatterns({ contextDir, ...(req.signal ? { signal: req.signal } : {}) });
    const matcher = createPatternMatcher(ignorePatterns);
    out.set(name, { contextDir, ignorePatterns, isIgnored: (rel) => matcher.matches(rel) });
  }
  return out;
}

/**
 * The stat cache of a state root, read from the database once per process: a `kiln serve` keeps it across builds
 * (bigcontext's 20,000 rows cost ~50 ms to read). Entries other processes add meanwhile are only missed (the file is
 * hashed again); an entry never turns wrong, since its key holds the inode, size, mtime and ctime.
 */
const statMaps = new WeakMap<object, Map<string, string>>();
function statCacheOf(s: State): Map<string, string> {
  let m = statMaps.get(s.db);
  if (!m) statMaps.set(s.db, (m = s.db.statCache.statCacheLoad()));
  return m;
}

/** Solve the graph with this build's runner and cache records, reporting progress; stat-cache entries are saved. */
async function solveGraph(b: BuildRun, graph: BuildGraph, needed: string[], input: BuildInput, ignorePatterns: string[]): Promise<Map<string, VertexResult>> {
  const { req, s } = b;
  const matcher = createPatternMatcher(ignorePatterns);
  const statMap = statCacheOf(s);
  const statDirty = new Map<string, string>();
  const runner = createOpRunner({
    cache: layerCache(s, b.lease),
    executor: s.executor,
    stateDir: s.root,
    contextDir: input.contextDir,
    isIgnored: (rel) => matcher.matches(rel),
    ignorePatterns,
    ...(req.contextWatch ? { contextWatch: req.contextWatch } : {}),
    statCache: {
      get: (k) => statMap.get(k),
      set: (k, d) => {
        statMap.set(k, d);
        statDirty.set(k, d);
      },
    },
    ...(b.localContexts?.size ? { namedContexts: b.localContexts } : {}),
    secrets: new Map((req.secrets ?? []).map((x) => [x.id, x])),
    loadImage: (ref) => loadLocalImage(s, ref),
    ...(req.sourceDateEpoch !== undefined ? { sourceDateEpoch: req.sourceDateEpoch } : {}),
    ...(req.network ? { network: req.network } : {}),
    ...(req.limits ? { limits: req.limits } : {}),
    ...(req.ulimits ? { ulimits: req.ulimits } : {}),
    ...(req.extraHosts ? { extraHosts: req.extraHosts } : {}),
    ...(req.shmSizeBytes !== undefined ? { shmSizeBytes: req.shmSizeBytes } : {}),
    buildId: b.buildId,
    ...(b.shared?.onCacheMount ? { onCacheMount: b.shared.onCacheMount } : {}),
  });
  // with a shared cache, every record is committed at once: its background push reads it from the database
  const writes = (b.cacheWrites = createCacheWriteBatch(s, { batch: !b.shared?.remote }));
  if (req.cacheFrom?.length) b.cacheImport = await importCacheSources(req, b.registry);
  req.progress.setTotal(needed.length);
  const results = await solve({
    graph,
    runner,
    cache: leasedCacheIndex(s, writes, b.lease),
    ...(b.shared?.remote ? { remote: b.shared.remote } : {}),
    ...(req.sourceDateEpoch !== undefined ? { sourceDateEpoch: req.sourceDateEpoch } : {}),
    concurrency: 3,
    ...(req.signal ? { signal: req.signal } : {}),
    onEvent: (e) => {
      b.buildLog.event(e);
      reportEvent(req.progress, e);
    },
  });
  writes.flush();
  if (statDirty.size > 0) s.db.statCache.statCacheSave(statDirty);
  return results;
}

/** A solve event as progress shows it (hidden vertices only when they fail). */
function reportEvent(progress: ProgressSink, e: SolveEvent): void {
  if (e.vertex.hidden && e.type !== 'error') return;
  const base = { id: e.vertex.id, name: e.vertex.name, at: Date.now() };
  if (e.type === 'start') progress.event({ type: 'step-start', ...base });
  else if (e.type === 'cached') progress.event({ type: 'step-cached', ...base });
  else if (e.type === 'done') progress.event({ type: 'step-done', ...base, durationMs: e.result.durationMs });
  else if (e.type === 'error') progress.event({ type: 'step-error', ...base, error: errorLine(e.error) });
  else if (e.type === 'log') progress.event({ type: 'log', ...base, stream: e.stream, data: e.data.toString('utf8') });
}

/** Config and manifest of the target, written to the store and pinned by the lease. */
async function assembleImage(b: BuildRun, graph: BuildGraph, results: Map<string, VertexResult>): Promise<{ img: { manifest: Descriptor; config: Descriptor }; config: ImageConfig; keys: { min: string[]; max: string[] } }> {
  const { req, s } = b;
  const target = results.get(graph.target.vertex)!;
  const config = structuredClone(graph.target.config);
  const createdAt = stepTimes(s, results, req.sourceDateEpoch);
  config.rootfs = { type: 'layers', diff_ids: target.layers };
  config.history = buildHistory(graph.history, results, createdAt);
  config.created = imageCreated(graph.history, createdAt, req.sourceDateEpoch);
  // `--label K=V` (as buildx): on the image's config only, after the Dockerfile's own LABELs
  if (req.labels && Object.keys(req.labels).length) config.config = { ...config.config, Labels: { ...(config.config?.Labels ?? {}), ...req.labels } };
  const layers: Descriptor[] = target.layers.map((d) => {
    const l = s.db.layers.getLayer(d);
    if (!l) throw new BuildError('ERR_KILN_INTERNAL', `layer ${d} has no record`);
    return { mediaType: l.mediaType, digest: l.blob, size: l.blobSize };
  });
  const keys = cacheKeys(graph, results);
  if (req.cacheTo?.some((c) => c.type === 'inline')) (config as unknown as Record<string, unknown>)[INLINE_CACHE_FIELD] = inlineCache(s.db, keys.min, target.layers);
  let img = await writeImage(s, config, layers);
  if (!pinBlobs(s, b.lease, [img.manifest.digest, img.config.digest])) img = await writeImage(s, config, layers);
  return { img, config, keys };
}

/** Tags, `--output` archives and pushes; exit 0 only when what was asked for exists. */
async function deliverImage(b: BuildRun, manifest: Digest, configDigest: Digest, layers: Digest[]): Promise<void> {
  const { req, s } = b;
  for (const t of req.tags) s.db.images.putImage({ name: normalizeRef(t), manifest, created: Date.now() });
  for (const o of req.outputs ?? []) {
    const images = [{ manifest, names: (o.names ?? req.tags).map(normalizeRef) }];
    if (o.type === 'docker') await writeDockerArchive({ store: s.store, images, dest: o.dest });
    else if (o.type === 'local' || o.type === 'tar') await exportRootfs(s, layers, { type: o.type, dest: o.dest });
    else await writeOciLayout({ store: s.store, images, dest: o.dest, format: o.type === 'oci-dir' ? 'dir' : 'tar' });
  }
  for (const ref of req.push ?? []) {
    const r = parseRegistryRef(ref);
    const d = await pushImage({ client: b.registry(), store: s.store, manifest, ref: r.tag || r.digest ? r : { ...r, tag: 'latest' }, ...(req.signal ? { signal: req.signal } : {}) });
    info(req, `pushed ${ref} (${d.digest})`);
  }
  for (const d of [manifest, configDigest]) {
    if (!(await s.store.has(d))) throw new BuildError('ERR_KILN_INTERNAL', `the image was not written: blob ${d} is missing from ${s.store.root}`);
  }
  for (const o of req.outputs ?? []) if (!existsSync(o.dest)) throw new BuildError('ERR_KILN_ARCHIVE_WRITE', `the output ${o.dest} was not written`);
}

/** `--cache-to` other than inline (which is in the image config already). */
async function exportCaches(b: BuildRun, keys: { min: string[]; max: string[] }): Promise<CacheExportReport[]> {
  const { req, s } = b;
  const reports: CacheExportReport[] = [];
  for (const spec of req.cacheTo ?? []) {
    if (spec.type === 'inline') continue;
    const rep = await exportCache({ stores: s, spec, keys, ...(spec.type === 'registry' ? { client: b.registry() } : {}), ...(req.signal ? { signal: req.signal } : {}) });
    reports.push(rep);
    info(req, `exported cache (mode=${spec.mode}): ${rep.records} records, ${rep.layers} layers to ${spec.type === 'local' ? spec.dest : spec.ref}`);
  }
  return reports;
}

function stepReports(graph: BuildGraph, needed: string[], results: Map<string, VertexResult>): StepReport[] {
  return needed.map((id) => {
    const v = graph.vertices.get(id)!;
    const r = results.get(id)!;
    return {
      name: v.name,
      cached: r.cached,
      durationMs: r.durationMs,
      stage: v.stage,
      ...(v.location ? { line: v.location.line } : {}),
      key: r.key,
      diffId: r.diffId,
      ...(r.remote ? { remote: true } : {}),
    };
  });
}

/** Record a failed (or interrupted) build, keep the records of the steps that finished, and say why in one error. */
async function failBuild(b: BuildRun, caught: unknown): Promise<unknown> {
  const { req, s, record } = b;
  const interrupted = req.signal?.aborted === true;
  const err = failureOf({ state: s, err: caught, interrupted, reason: req.signal?.reason });
  // pushes already under way finish (what they share is valid); their warnings no longer matter
  await b.shared?.finish().catch(() => undefined);
  try {
    b.cacheWrites?.flush(); // records of the steps that did finish: the next build reuses them
  } catch {
    /* the disk may be full: those steps run again next time */
  }
  record.status = interrupted && !(isBuildError(err) && err.code === 'ERR_KILN_LIMIT_EXCEEDED') ? 'interrupted' : 'failed';
  record.finished = Date.now();
  record.error = errorLine(err);
  recordFailure(s, record, isNoSpace(err));
  await abandonBuild({ lease: b.lease, log: b.buildLog }).catch(() => undefined);
  req.progress.finish(false);
  return err;
}


/** The start check as a step of the build: progress events like a step's, a report in `steps`. */
async function runStartCheck(req: BuildRequest, manifestDigest: Digest, config: ImageConfig): Promise<StepReport> {
  const check = req.startCheck!;
  const id = 'start-check';
  const name = `START CHECK ${check.label}`;
  const at = Date.now();
  req.progress.event({ type: 'step-start', id, name, at });
  try {
    const r = await proveStartCommand({
      state: req.state, manifestDigest, config, check,
      onOutput: (stream, chunk) => req.progress.event({ type: 'log', id, name, stream, data: chunk.toString('utf8'), at: Date.now() }),
      ...(req.signal ? { signal: req.signal } : {}),
    });
    if (r.cached) req.progress.event({ type: 'step-cached', id, name, at: Date.now() });
    else req.progress.event({ type: 'step-done', id, name, at: Date.now(), durationMs: r.durationMs });
    return { name, cached: r.cached, durationMs: r.durationMs, stage: '', key: r.key, diffId: null };
  } catch (err) {
    req.progress.event({ type: 'step-error', id, name, at: Date.now(), error: errorLine(err) });
    throw err;
  }
}

/** BuildKit's SecretsUsedInArgOrEnv, at build time (a Dockerfile that does not parse is reported by the conversion). */
function warnSecretsInArgs(req: BuildRequest, o: { text: string; file: string }): void {
  let found: ReturnType<typeof secretWarnings> = [];
  try {
    found = secretWarnings(o);
  } catch {
    return;
  }
  for (const f of found) info(req, `warning: ${formatFinding(f)}`);
}

function info(req: BuildRequest, message: string): void {
  req.progress.event({ type: 'info', message, at: Date.now() });
}

async function importCacheSources(req: BuildRequest, registry: () => RegistryClient): Promise<CacheImportReport> {
  const needsClient = req.cacheFrom!.some((c) => c.type === 'registry');
  const rep = await importCache({ stores: req.state, sources: req.cacheFrom!, ...(needsClient ? { client: registry() } : {}), ...(req.signal ? { signal: req.signal } : {}) });
  for (const w of rep.warnings) info(req, `warning: ${w}`);
  info(req, `imported cache: ${rep.imported} records (${rep.present} already here, ${rep.dropped} dropped), ${rep.fetched} layers fetched`);
  return rep;
}

/** A base image with a shared cache: the local store, then the team's copy under the name, then a pull as usual. */
async function resolveShared(s: State, ref: string, shared: NonNullable<ReturnType<typeof openSharedCache>>, pull: PullOptions): Promise<LocalImage> {
  try {
    return await loadLocalImage(s, ref);
  } catch (err) {
    if (!isNotFound(err)) throw err;
  }
  return (await shared.pullBase(ref)) ?? resolveImage(s, ref, pull);
}

function errorLine(err: unknown): string {
  return formatUserError(err).split('\n')[0]!.replace(/^error: /, '');
}

/** Build args whose names look secret are not kept in history. */
function redactArgs(args: Record<string, string>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(args)) out[k] = /secret|token|password|passwd|key|credential/i.test(k) ? '***' : v;
  return out;
}

/** What `--metadata-file` holds for a build (also sent to a local hand-off's client, which writes it). */
export function metadataFileData(r: BuildResult): Record<string, unknown> {
  return {
    'containerimage.digest': r.imageDigest,
    'containerimage.config.digest': r.configDigest,
    'kiln.build.id': r.buildId,
    'kiln.steps': r.steps.map((st) => ({ name: st.name, cached: st.cached, durationMs: st.durationMs, ...(st.missReason ? { missReason: st.missReason } : {}), ...(st.remote ? { remote: true } : {}) })),
  };
}

export async function writeMetadataFile(file: string, r: BuildResult): Promise<void> {
  await fsp.writeFile(file, `${JSON.stringify(metadataFileData(r), null, 2)}\n`);
}
