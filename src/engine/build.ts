import { randomBytes } from 'node:crypto';
import { existsSync, promises as fsp } from 'node:fs';
import path from 'node:path';
import { BuildError, ExecError, formatUserError, isBuildError, isDiskFull, isNoSpace, isNotFound, noSpaceError } from '../errors/index.js';
import type { Descriptor, Digest, HistoryEntry, ImageConfig } from '../oci/index.js';
import { convertDockerfile } from '../frontend/dockerfile/convert/index.js';
import { closure, solve, type CacheIndex, type SolveEvent, type VertexResult } from '../solver/index.js';
import { createOpRunner, type LocalImage, type SecretSource } from '../ops/index.js';
import { createPatternMatcher, MAX_DOCKERFILE_BYTES, readBoundedText, readIgnorePatterns, walkContext } from '../context/index.js';
import { writeDockerArchive, writeOciLayout } from '../exporter/index.js';
import type { ProgressSink } from '../progress/index.js';
import { processOwner, type State } from './state.js';
import { validateImageName } from './image-name.js';
import { proveStartCommand, type StartCheck } from './start-check.js';
import { exportRootfs } from './rootfs.js';
import { loadLocalImage, normalizeRef, registerLayers, resolveImage, writeImage, type PullOptions } from './images.js';
import { canonicalJson, sha256 } from '../oci/index.js';
import type { BuildGraph } from '../graph/index.js';
import type { OpRunner } from '../solver/index.js';
import { parseRegistryRef, pushImage, RegistryClient, type RegistryOptions } from '../registry/index.js';
import { exportCache, importCache, inlineCache, INLINE_CACHE_FIELD, type CacheExportReport, type CacheExportSpec, type CacheImportReport, type CacheImportSpec, type CacheRegistrySpec } from '../cache-io/index.js';
import { openSharedCache, type SharedCacheReport } from './shared-cache.js';
import { applyLangCache, type ApplyLangCacheOptions } from '../langcache/index.js';
import { abandonBuild, acquireLease, finishBuild, historyPolicy, pinBlobs } from '../gc/index.js';
import { explainSolve, openBuildLog } from '../explain/index.js';

export interface BuildOutput {
  /** image archives (`oci`, `docker`, `oci-dir`), or the final filesystem (`local` into a folder, `tar` as one tar) */
  type: 'oci' | 'docker' | 'oci-dir' | 'local' | 'tar';
  dest: string;
  /** the image's names in the archive (`name=` of `--output`); default the build's tags */
  names?: string[];
}

export interface BuildRequest {
  state: State;
  /** `--add-host HOST:IP`: /etc/hosts lines of every RUN step */
  extraHosts?: Array<{ host: string; ip: string }>;
  /** `--ulimit`: rlimits of every RUN step */
  ulimits?: Array<{ name: string; soft: number; hard: number }>;
  /** `--shm-size`: /dev/shm of every RUN step, bytes */
  shmSizeBytes?: number;
  /** `--label K=V`: labels set on the final image's config */
  labels?: Record<string, string>;
  /** a template's start command: proven at the end of the build (run until its ready check passes), cached by image */
  startCheck?: StartCheck;
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
  /** vertices (by 1-based step index among all steps) that always run: the SDK's skipCache */
  secrets?: SecretSource[];
  outputs?: BuildOutput[];
  progress: ProgressSink;
  /** extra ignore patterns on top of .dockerignore */
  ignorePatterns?: string[];
  sourceDateEpoch?: number;
  /** network of RUN steps without `--network` (default host) */
  network?: 'host' | 'none';
  /** mark these steps (by their line in the Dockerfile) as never cached */
  noCacheLines?: number[];
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

/** Run one build: Dockerfile → graph → solve (cache or execute) → image → tags/outputs → history. */
export async function runBuild(req: BuildRequest): Promise<BuildResult> {
  const s = req.state;
  const started = Date.now();
  const buildId = `${started.toString(36)}${randomBytes(4).toString('hex')}`;
  for (const t of req.tags) validateImageName(t, '-t'); // refused before anything is built
  for (const t of req.push ?? []) validateImageName(t, 'push');
  const contextDir = path.resolve(req.contextDir);
  if (!existsSync(contextDir)) throw new BuildError('ERR_KILN_ARGUMENT', `build context "${req.contextDir}" does not exist`);
  const dockerfilePath = req.dockerfile ? path.resolve(req.dockerfile) : path.join(contextDir, 'Dockerfile');
  const displayName = req.dockerfile ?? 'Dockerfile';
  let text = req.dockerfileText;
  if (text === undefined) {
    // a regular file under the size limit: a FIFO or `-f /dev/zero` is refused at once, naming the file
    const read = await readBoundedText({ file: dockerfilePath, what: 'Dockerfile', maxBytes: MAX_DOCKERFILE_BYTES });
    if (read === null) throw new BuildError('ERR_KILN_DOCKERFILE_NOT_FOUND', `cannot read Dockerfile "${dockerfilePath}": no such file`);
    text = read;
  }
  const record = {
    id: buildId,
    started,
    finished: null as number | null,
    status: 'running' as 'running' | 'success' | 'failed' | 'interrupted',
    target: req.target ?? '',
    context: contextDir,
    dockerfile: dockerfilePath,
    args: redactArgs(req.buildArgs),
    tags: req.tags,
    imageDigest: null as string | null,
    steps: [] as Array<Record<string, unknown>>,
    error: null as string | null,
    owner: processOwner(),
  };
  s.db.putBuild(record);
  // the last line of defence for "a failure is never a success": if every promise of this build is left pending (a
  // stream that never ends) the process would otherwise exit 0 with no image; it is a failure, said so and recorded
  const onStall = (): void => {
    if (record.status !== 'running') return;
    record.status = 'failed';
    record.finished = Date.now();
    record.error = 'the build stopped without finishing (an internal stall)';
    try {
      s.db.finishBuildRecord({ id: record.id, status: 'failed', finished: record.finished, error: record.error });
    } catch {
      /* recorded as interrupted at the next start */
    }
    process.stderr.write(`error: ${record.error}; rerun with KILN_DEBUG=1 and report it\n`);
    process.exitCode = 1;
  };
  watchStall(onStall, true);
  const lease = acquireLease(s.db); // prune/GC leave what this build uses alone (src/gc)
  const buildLog = openBuildLog({ root: s.root, buildId, maxBytes: historyPolicy(s.root).maxLogBytes });

  const events: SolveEvent[] = [];
  let cacheWrites: CacheWriteBatch | undefined;
  let client: RegistryClient | undefined;
  /** one client per build: tokens and known blob locations are shared by pulls, cache import/export and pushes */
  const registry = (): RegistryClient => (client ??= new RegistryClient(req.registry));
  const sharesMounts = [...(req.cacheFrom ?? []), ...(req.cacheTo ?? [])].some((c) => c.type === 'registry' && c.mounts);
  const shared = req.cacheRegistry || sharesMounts
    ? openSharedCache({
        state: s, client: registry, info: (m) => info(req, m),
        ...(req.cacheRegistry ? { cacheRegistry: req.cacheRegistry } : {}),
        ...(req.cacheFrom ? { cacheFrom: req.cacheFrom } : {}),
        ...(req.cacheTo ? { cacheTo: req.cacheTo } : {}),
        ...(req.signal ? { signal: req.signal } : {}),
      })
    : undefined;
  try {
    const ignorePatterns = [...(await readIgnorePatterns({ contextDir, dockerfilePath })), ...(req.ignorePatterns ?? [])];
    const matcher = createPatternMatcher(ignorePatterns);
    if (req.maxContextBytes !== undefined) {
      await walkContext({ dir: contextDir, excludePatterns: ignorePatterns, maxBytes: req.maxContextBytes, ...(req.signal ? { signal: req.signal } : {}) });
    }
    const graph = await convertDockerfile({
      text,
      file: displayName,
      buildArgs: req.buildArgs,
      images: {
        resolve: async (ref) => {
          const pull = { client: registry, onPull: (r: string) => info(req, `pulling ${r}`), ...(req.signal ? { signal: req.signal } : {}) };
          // with a shared cache: this machine's store, then the team's copy under the name, then the name's registry
          const img = shared ? await resolveShared(s, ref, shared, pull) : await resolveImage(s, ref, pull);
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
      ...(req.signal ? { signal: req.signal } : {}),
    });
    for (const w of graph.warnings ?? []) info(req, w);
    if (req.langCache) applyLangCache(graph, req.langCache);
    if (req.noCacheLines?.length) {
      for (const v of graph.vertices.values()) if (v.location && req.noCacheLines.includes(v.location.line)) v.noCache = true;
    }
    if (req.network) {
      // `kiln build --network` is part of every RUN's definition, so it is part of its cache key
      for (const v of graph.vertices.values()) if (v.op.type === 'exec' && v.op.network === 'default') v.op.network = req.network;
    }
    const statMap = s.db.statCacheLoad();
    const statDirty = new Map<string, string>();
    const runner = createOpRunner({
      store: s.store,
      db: s.db,
      snapshots: s.snapshots,
      executor: s.executor,
      stateDir: s.root,
      contextDir,
      isIgnored: (rel) => matcher.matches(rel),
      ignorePatterns,
      statCache: {
        get: (k) => statMap.get(k),
        set: (k, d) => {
          statMap.set(k, d);
          statDirty.set(k, d);
        },
      },
      secrets: new Map((req.secrets ?? []).map((x) => [x.id, x])),
      loadImage: (ref) => loadLocalImage(s, ref),
      ...(req.sourceDateEpoch !== undefined ? { sourceDateEpoch: req.sourceDateEpoch } : {}),
      ...(req.network ? { network: req.network } : {}),
      ...(req.ulimits ? { ulimits: req.ulimits } : {}),
      ...(req.extraHosts ? { extraHosts: req.extraHosts } : {}),
      ...(req.shmSizeBytes !== undefined ? { shmSizeBytes: req.shmSizeBytes } : {}),
      buildId,
      ...(shared?.onCacheMount ? { onCacheMount: shared.onCacheMount } : {}),
    });
    // with a shared cache, every record is committed at once: its background push reads it from the database
    cacheWrites = createCacheWriteBatch(s, { batch: !shared?.remote });
    const writes = cacheWrites;
    const cache: CacheIndex = {
      get: (k) => {
        const pending = writes.pending(k);
        if (pending) return pending;
        // a hit without a layer needs no lease: read it without taking the write lock
        const plain = s.db.getCache(k);
        if (!plain?.diffId) return plain;
        return s.db.tx(() => {
          const hit = s.db.getCache(k);
          if (hit?.diffId) lease.addLayers([hit.diffId]); // in one transaction with the lookup: prune sees it or we miss
          return hit;
        });
      },
      put: (r) => writes.put(r),
      touch: (k) => writes.touch(k),
    };
    const needed = closure(graph.vertices, graph.target.vertex).filter((id) => !graph.vertices.get(id)!.hidden);
    const cacheImport = req.cacheFrom?.length ? await importCacheSources(req, registry) : undefined;
    req.progress.setTotal(needed.length);
    const results = await solve({
      graph,
      runner: withEpochKey(runner, req.sourceDateEpoch),
      cache,
      ...(shared?.remote ? { remote: shared.remote } : {}),
      concurrency: 3,
      ...(req.signal ? { signal: req.signal } : {}),
      onEvent: (e) => {
        events.push(e);
        buildLog.event(e);
        if (e.vertex.hidden && e.type !== 'error') return;
        const at = Date.now();
        const base = { id: e.vertex.id, name: e.vertex.name, at };
        if (e.type === 'start') req.progress.event({ type: 'step-start', ...base });
        else if (e.type === 'cached') req.progress.event({ type: 'step-cached', ...base });
        else if (e.type === 'done') req.progress.event({ type: 'step-done', ...base, durationMs: e.result.durationMs });
        else if (e.type === 'error') req.progress.event({ type: 'step-error', ...base, error: errorLine(e.error) });
        else if (e.type === 'log') req.progress.event({ type: 'log', ...base, stream: e.stream, data: e.data.toString('utf8') });
      },
    });
    writes.flush();
    if (statDirty.size > 0) s.db.statCacheSave(statDirty);

    // ---- assemble the image
    const target = results.get(graph.target.vertex)!;
    const config = structuredClone(graph.target.config);
    const createdAt = stepTimes(s, results, req.sourceDateEpoch);
    config.rootfs = { type: 'layers', diff_ids: target.layers };
    config.history = buildHistory(graph.history, results, createdAt);
    config.created = imageCreated(graph.history, createdAt, req.sourceDateEpoch);
    // `--label K=V` (as buildx): on the image's config only, after the Dockerfile's own LABELs
    if (req.labels && Object.keys(req.labels).length) config.config = { ...config.config, Labels: { ...(config.config?.Labels ?? {}), ...req.labels } };
    const layers: Descriptor[] = target.layers.map((d) => {
      const l = s.db.getLayer(d);
      if (!l) throw new BuildError('ERR_KILN_INTERNAL', `layer ${d} has no record`);
      return { mediaType: l.mediaType, digest: l.blob, size: l.blobSize };
    });
    const keys = cacheKeys(graph, results);
    if (req.cacheTo?.some((c) => c.type === 'inline')) (config as unknown as Record<string, unknown>)[INLINE_CACHE_FIELD] = inlineCache(s.db, keys.min, target.layers);
    let img = await writeImage(s, config, layers);
    if (!pinBlobs(s, lease, [img.manifest.digest, img.config.digest])) img = await writeImage(s, config, layers);
    // a start command that never comes up fails the build before the image is named or exported
    const startStep = req.startCheck ? await runStartCheck(req, img.manifest.digest, config) : undefined;
    for (const t of req.tags) s.db.putImage({ name: normalizeRef(t), manifest: img.manifest.digest, created: Date.now() });
    for (const o of req.outputs ?? []) {
      const images = [{ manifest: img.manifest.digest, names: (o.names ?? req.tags).map(normalizeRef) }];
      if (o.type === 'docker') await writeDockerArchive({ store: s.store, images, dest: o.dest });
      else if (o.type === 'local' || o.type === 'tar') await exportRootfs(s, target.layers, { type: o.type, dest: o.dest });
      else await writeOciLayout({ store: s.store, images, dest: o.dest, format: o.type === 'oci-dir' ? 'dir' : 'tar' });
    }
    for (const ref of req.push ?? []) {
      const r = parseRegistryRef(ref);
      const d = await pushImage({ client: registry(), store: s.store, manifest: img.manifest.digest, ref: r.tag || r.digest ? r : { ...r, tag: 'latest' }, ...(req.signal ? { signal: req.signal } : {}) });
      info(req, `pushed ${ref} (${d.digest})`);
    }
    // exit 0 only when what was asked for exists
    for (const d of [img.manifest.digest, img.config.digest]) {
      if (!(await s.store.has(d))) throw new BuildError('ERR_KILN_INTERNAL', `the image was not written: blob ${d} is missing from ${s.store.root}`);
    }
    for (const o of req.outputs ?? []) if (!existsSync(o.dest)) throw new BuildError('ERR_KILN_ARCHIVE_WRITE', `the output ${o.dest} was not written`);
    const cacheExports: CacheExportReport[] = [];
    for (const spec of req.cacheTo ?? []) {
      if (spec.type === 'inline') continue;
      const rep = await exportCache({ stores: s, spec, keys, ...(spec.type === 'registry' ? { client: registry() } : {}), ...(req.signal ? { signal: req.signal } : {}) });
      cacheExports.push(rep);
      info(req, `exported cache (mode=${spec.mode}): ${rep.records} records, ${rep.layers} layers to ${spec.type === 'local' ? spec.dest : spec.ref}`);
    }

    const steps: StepReport[] = needed.map((id) => {
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
    if (startStep) steps.push(startStep);
    const sharedCache = shared ? await shared.finish() : undefined;
    if (sharedCache && req.cacheRegistry) {
      info(req, `shared cache ${req.cacheRegistry.ref}: ${sharedCache.hits ?? 0} steps from the registry (${sharedCache.bytesFetched ?? 0} bytes), ${sharedCache.pushed ?? 0} pushed, ${sharedCache.basesPushed ?? 0} base images pushed`);
    }
    const why = explainSolve({ db: s.db, record, needed, vertices: graph.vertices, results, skipReason: req.noCache ? '--no-cache' : 'no-cache filter' });
    steps.forEach((st, i) => why[i] && (st.missReason = why[i]));
    record.status = 'success';
    record.finished = Date.now();
    record.imageDigest = img.manifest.digest;
    record.steps = steps as unknown as Array<Record<string, unknown>>;
    s.db.putBuild(record);
    await finishBuild({ state: s, lease, log: buildLog, progress: req.progress });
    req.progress.finish(true);
    return {
      buildId, imageDigest: img.manifest.digest, configDigest: img.config.digest, config, steps, durationMs: Date.now() - started,
      ...(cacheImport ? { cacheImport } : {}), ...(cacheExports.length ? { cacheExports } : {}), ...(sharedCache ? { sharedCache } : {}),
    };
  } catch (caught) {
    const interrupted = req.signal?.aborted === true;
    const err = failureOf({ state: s, err: caught, interrupted, reason: req.signal?.reason });
    // pushes already under way finish (what they share is valid); their warnings no longer matter
    await shared?.finish().catch(() => undefined);
    try {
      cacheWrites?.flush(); // records of the steps that did finish: the next build reuses them
    } catch {
      /* the disk may be full: those steps run again next time */
    }
    record.status = interrupted ? 'interrupted' : 'failed';
    record.finished = Date.now();
    record.error = errorLine(err);
    recordFailure(s, record, isNoSpace(err));
    await abandonBuild({ lease, log: buildLog }).catch(() => undefined);
    req.progress.finish(false);
    throw err;
  } finally {
    watchStall(onStall, false);
  }
}

/** Builds of this process still running, told when the event loop empties under them (one listener for all). */
const stallWatchers = new Set<() => void>();
function watchStall(fn: () => void, on: boolean): void {
  if (on) {
    if (stallWatchers.size === 0) process.on('beforeExit', runStallWatchers);
    stallWatchers.add(fn);
  } else {
    stallWatchers.delete(fn);
    if (stallWatchers.size === 0) process.off('beforeExit', runStallWatchers);
  }
}
function runStallWatchers(): void {
  for (const fn of [...stallWatchers]) {
    stallWatchers.delete(fn);
    fn();
  }
  process.off('beforeExit', runStallWatchers);
}

/** Write a failed build's record; on a full disk the reserve under the root is given back to make room. */
function recordFailure(s: State, record: Parameters<State['db']['putBuild']>[0], noSpace: boolean): void {
  if (noSpace) s.releaseReserve();
  try {
    s.db.putBuild(record);
    return;
  } catch (err) {
    if (!isNoSpace(err)) return; // the database may be closing
  }
  s.releaseReserve();
  try {
    s.db.finishBuildRecord({ id: record.id, status: record.status, finished: record.finished ?? Date.now(), error: record.error });
  } catch {
    /* still no room: the next start marks it interrupted */
  }
}

/**
 * The error a failed build reports, as one sentence: a signal is "interrupted", a full disk (a raw ENOSPC, SQLite's
 * SQLITE_FULL, or any failure — a RUN that could not write, a bug tripped by a short write — while the state
 * root's filesystem has no room left) is "no space left on device while writing ... under <root>".
 */
function failureOf(o: { state: State; err: unknown; interrupted: boolean; reason: unknown }): unknown {
  const { err } = o;
  if (o.interrupted) {
    if (isBuildError(o.reason) && o.reason.code === 'ERR_KILN_INTERRUPTED') return o.reason;
    return new BuildError('ERR_KILN_INTERRUPTED', 'build interrupted', { cause: err });
  }
  if (isBuildError(err) && err.code === 'ERR_KILN_NO_SPACE') return err;
  const full = isNoSpace(err) || isDiskFull(o.state.root, 1024 * 1024);
  if (!full || (isBuildError(err) && !(err instanceof ExecError) && err.kind === 'invalid-argument')) return err;
  const what = err instanceof ExecError ? `the output of a RUN step (${err.message})` : "the build's data";
  return noSpaceError({ what, where: o.state.root, cause: err });
}


interface CacheWriteBatch {
  put(rec: Parameters<State['db']['putCache']>[0]): void;
  touch(key: string): void;
  pending(key: string): { outputId: string; diffId: Digest | null; inputs: Record<string, unknown> } | undefined;
  flush(): void;
}

/**
 * Cache-record writes of one build: records of config-only steps and use-count touches are committed together in one
 * transaction per turn of the event loop rather than one commit per step (55,000 ENV steps were 55,000 commits); any
 * other record is committed at once, with what is pending. A crash before a flush loses only config-only records
 * (cheap to redo), never trust.
 */
function createCacheWriteBatch(s: State, o: { batch: boolean }): CacheWriteBatch {
  const puts = new Map<string, Parameters<State['db']['putCache']>[0]>();
  const touches = new Set<string>();
  let scheduled: NodeJS.Immediate | undefined;
  const flush = (): void => {
    if (scheduled) clearImmediate(scheduled);
    scheduled = undefined;
    if (puts.size === 0 && touches.size === 0) return;
    // cleared only once committed: after a failed commit the final flush tries these writes again
    s.db.tx(() => {
      for (const r of puts.values()) s.db.putCache(r);
      for (const k of touches) s.db.touchCache(k);
    });
    puts.clear();
    touches.clear();
  };
  const schedule = (): void => {
    // an error here (disk full) surfaces at the final flush of the build, which repeats the writes that are left
    scheduled ??= setImmediate(() => {
      scheduled = undefined;
      try {
        flush();
      } catch {
        /* reported by the final flush */
      }
    });
  };
  return {
    put(rec) {
      puts.set(rec.key, rec);
      // only records of config-only steps (ENV, LABEL, ...) wait for the batch; a step that ran is committed before
      // it is reported done, so a build killed right after still reuses it
      if (o.batch && (rec.inputs.op as { type?: unknown } | undefined)?.type === 'meta') schedule();
      else flush();
    },
    touch(key) {
      touches.add(key);
      schedule();
    },
    pending: (key) => puts.get(key),
    flush,
  };
}

type GraphHistory = Array<{ createdBy: string; vertex: string | null; emptyLayer: boolean; base?: HistoryEntry }>;

function buildHistory(hist: GraphHistory, results: Map<string, VertexResult>, createdAt: (vertex: string | null) => number): HistoryEntry[] {
  return hist.map((h) => {
    if (h.base) return h.base;
    const r = h.vertex ? results.get(h.vertex) : undefined;
    const empty = h.emptyLayer || !r || r.diffId === null;
    return { created: isoSeconds(createdAt(h.vertex)), created_by: h.createdBy, comment: 'buildkit.dockerfile.v0', ...(empty ? { empty_layer: true } : {}) };
  });
}

function isoSeconds(ms: number): string {
  return new Date(Math.floor(ms / 1000) * 1000).toISOString().replace(/\.\d{3}Z$/, 'Z');
}

/**
 * When each step's output was first produced (its cache record's `created`, which an imported record brings along),
 * clamped to SOURCE_DATE_EPOCH. As in BuildKit, a fully cached rebuild — here or on another machine that imported the
 * cache — therefore gets the same history and the same image digest.
 */
function stepTimes(s: State, results: Map<string, VertexResult>, epoch: number | undefined): (vertex: string | null) => number {
  const now = Date.now();
  const memo = new Map<string | null, number>();
  return (vertex) => {
    const known = memo.get(vertex);
    if (known !== undefined) return known;
    const r = vertex ? results.get(vertex) : undefined;
    const t = (r && s.db.getCacheCreated(r.key)) ?? now;
    const out = epoch !== undefined ? Math.min(t, epoch * 1000) : t;
    memo.set(vertex, out);
    return out;
  };
}

/** The image's `created`: SOURCE_DATE_EPOCH, else the latest of its steps' times (now for an image without steps). */
function imageCreated(hist: GraphHistory, createdAt: (vertex: string | null) => number, epoch: number | undefined): string {
  if (epoch !== undefined) return isoSeconds(epoch * 1000);
  const own = hist.filter((h) => !h.base);
  // a loop, not Math.max(...spread): an image of 55,000 steps would overflow the argument list
  let latest = -Infinity;
  for (const h of own) latest = Math.max(latest, createdAt(h.vertex));
  return isoSeconds(own.length ? latest : Date.now());
}

/**
 * Cache keys to export: `min` are the steps of the final image's chain (target and its parents), `max` every step
 * solved, in dependency order. Sources have no record and are left out.
 */
function cacheKeys(graph: BuildGraph, results: Map<string, VertexResult>): { min: string[]; max: string[] } {
  const isStep = (id: string): boolean => graph.vertices.get(id)?.op.type !== 'source' && results.has(id);
  const chain: string[] = [];
  for (let id: string | undefined = graph.target.vertex; id; id = graph.vertices.get(id)?.parent ?? undefined) if (isStep(id)) chain.push(results.get(id)!.key);
  chain.reverse(); // (push + reverse: unshift per step is quadratic on long chains)
  const max = closure(graph.vertices, graph.target.vertex).filter(isStep).map((id) => results.get(id)!.key);
  return { min: chain, max };
}

/**
 * With SOURCE_DATE_EPOCH every layer-producing step's key includes the epoch: its layer's mtimes are clamped to it,
 * so a layer built without (or with another) epoch must not be reused.
 */
function withEpochKey(runner: OpRunner, epoch: number | undefined): OpRunner {
  if (epoch === undefined) return runner;
  return {
    ...runner,
    async contentInputs(v, ctx) {
      const content = await runner.contentInputs(v, ctx);
      if (v.op.type !== 'exec' && v.op.type !== 'copy' && v.op.type !== 'mkdir') return content;
      const base = typeof content.digest === 'string' ? content.digest : canonicalJson(content);
      return { ...content, sourceDateEpoch: epoch, digest: sha256(`${base}\nSOURCE_DATE_EPOCH=${epoch}`) };
    },
  };
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

export async function writeMetadataFile(file: string, r: BuildResult): Promise<void> {
  const data = {
    'containerimage.digest': r.imageDigest,
    'containerimage.config.digest': r.configDigest,
    'kiln.build.id': r.buildId,
    'kiln.steps': r.steps.map((st) => ({ name: st.name, cached: st.cached, durationMs: st.durationMs, ...(st.missReason ? { missReason: st.missReason } : {}), ...(st.remote ? { remote: true } : {}) })),
  };
  await fsp.writeFile(file, `${JSON.stringify(data, null, 2)}\n`);
}
