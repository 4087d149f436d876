import { randomBytes } from 'node:crypto';
import { existsSync, promises as fsp, readFileSync } from 'node:fs';
import path from 'node:path';
import { BuildError, formatUserError } from '../errors/index.js';
import type { Descriptor, Digest, HistoryEntry, ImageConfig } from '../oci/index.js';
import { convertDockerfile } from '../frontend/dockerfile/convert/index.js';
import { closure, solve, type CacheIndex, type SolveEvent, type VertexResult } from '../solver/index.js';
import { createOpRunner, type SecretSource } from '../ops/index.js';
import { createPatternMatcher, readIgnorePatterns } from '../context/index.js';
import { writeDockerArchive, writeOciLayout } from '../exporter/index.js';
import type { ProgressSink } from '../progress/index.js';
import type { State } from './state.js';
import { loadLocalImage, normalizeRef, registerLayers, writeImage } from './images.js';

export interface BuildOutput {
  type: 'oci' | 'docker' | 'oci-dir';
  dest: string;
}

export interface BuildRequest {
  state: State;
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
  /** mark these steps (by their line in the Dockerfile) as never cached */
  noCacheLines?: number[];
  signal?: AbortSignal;
}

export interface StepReport {
  name: string;
  cached: boolean;
  durationMs: number;
  stage: string;
  line?: number;
  key: string;
  missReason?: string;
}

export interface BuildResult {
  buildId: string;
  imageDigest: Digest;
  configDigest: Digest;
  config: ImageConfig;
  steps: StepReport[];
  durationMs: number;
}

/** Run one build: Dockerfile → graph → solve (cache or execute) → image → tags/outputs → history. */
export async function runBuild(req: BuildRequest): Promise<BuildResult> {
  const s = req.state;
  const started = Date.now();
  const buildId = `${started.toString(36)}${randomBytes(4).toString('hex')}`;
  const contextDir = path.resolve(req.contextDir);
  if (!existsSync(contextDir)) throw new BuildError('ERR_KILN_ARGUMENT', `build context "${req.contextDir}" does not exist`);
  const dockerfilePath = req.dockerfile ? path.resolve(req.dockerfile) : path.join(contextDir, 'Dockerfile');
  const displayName = req.dockerfile ?? 'Dockerfile';
  let text = req.dockerfileText;
  if (text === undefined) {
    try {
      text = readFileSync(dockerfilePath, 'utf8');
    } catch {
      throw new BuildError('ERR_KILN_DOCKERFILE_NOT_FOUND', `cannot read Dockerfile "${dockerfilePath}"`);
    }
  }
  const record = {
    id: buildId,
    started,
    finished: null as number | null,
    status: 'running' as 'running' | 'success' | 'failed',
    target: req.target ?? '',
    context: contextDir,
    dockerfile: dockerfilePath,
    args: redactArgs(req.buildArgs),
    tags: req.tags,
    imageDigest: null as string | null,
    steps: [] as Array<Record<string, unknown>>,
    error: null as string | null,
  };
  s.db.putBuild(record);

  const events: SolveEvent[] = [];
  try {
    const ignorePatterns = [...(await readIgnorePatterns({ contextDir, dockerfilePath })), ...(req.ignorePatterns ?? [])];
    const matcher = createPatternMatcher(ignorePatterns);
    const graph = await convertDockerfile({
      text,
      file: displayName,
      buildArgs: req.buildArgs,
      images: {
        resolve: async (ref) => {
          const img = await loadLocalImage(s, ref);
          registerLayers(s, img.manifest, img.config);
          return { manifest: img.manifestDigest, config: img.config, ref: img.ref };
        },
      },
      ...(req.target ? { target: req.target } : {}),
      ...(req.noCache ? { noCache: true } : {}),
      ...(req.noCacheFilter ? { noCacheFilter: req.noCacheFilter } : {}),
      ...(req.signal ? { signal: req.signal } : {}),
    });
    if (req.noCacheLines?.length) {
      for (const v of graph.vertices.values()) if (v.location && req.noCacheLines.includes(v.location.line)) v.noCache = true;
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
    });
    const cache: CacheIndex = {
      get: (k) => s.db.getCache(k),
      put: (r) => s.db.putCache(r),
      touch: (k) => s.db.touchCache(k),
    };
    const needed = closure(graph.vertices, graph.target.vertex).filter((id) => !graph.vertices.get(id)!.hidden);
    req.progress.setTotal(needed.length);
    const results = await solve({
      graph,
      runner,
      cache,
      concurrency: 3,
      ...(req.signal ? { signal: req.signal } : {}),
      onEvent: (e) => {
        events.push(e);
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
    if (statDirty.size > 0) s.db.statCacheSave(statDirty);

    // ---- assemble the image
    const target = results.get(graph.target.vertex)!;
    const config = structuredClone(graph.target.config);
    const created = new Date(req.sourceDateEpoch !== undefined ? req.sourceDateEpoch * 1000 : Date.now()).toISOString().replace(/\.\d{3}Z$/, 'Z');
    config.created = created;
    config.rootfs = { type: 'layers', diff_ids: target.layers };
    config.history = buildHistory(graph.history, results, created);
    const layers: Descriptor[] = target.layers.map((d) => {
      const l = s.db.getLayer(d);
      if (!l) throw new BuildError('ERR_KILN_INTERNAL', `layer ${d} has no record`);
      return { mediaType: l.mediaType, digest: l.blob, size: l.blobSize };
    });
    const img = await writeImage(s, config, layers);
    for (const t of req.tags) s.db.putImage({ name: normalizeRef(t), manifest: img.manifest.digest, created: Date.now() });
    for (const o of req.outputs ?? []) {
      const images = [{ manifest: img.manifest.digest, names: req.tags.map(normalizeRef) }];
      if (o.type === 'docker') await writeDockerArchive({ store: s.store, images, dest: o.dest });
      else await writeOciLayout({ store: s.store, images, dest: o.dest, format: o.type === 'oci-dir' ? 'dir' : 'tar' });
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
      };
    });
    record.status = 'success';
    record.finished = Date.now();
    record.imageDigest = img.manifest.digest;
    record.steps = steps as unknown as Array<Record<string, unknown>>;
    s.db.putBuild(record);
    req.progress.finish(true);
    return { buildId, imageDigest: img.manifest.digest, configDigest: img.config.digest, config, steps, durationMs: Date.now() - started };
  } catch (err) {
    record.status = 'failed';
    record.finished = Date.now();
    record.error = errorLine(err);
    try {
      s.db.putBuild(record);
    } catch {
      /* the database may be closing */
    }
    req.progress.finish(false);
    throw err;
  }
}

function buildHistory(hist: Array<{ createdBy: string; vertex: string | null; emptyLayer: boolean; base?: HistoryEntry }>, results: Map<string, VertexResult>, created: string): HistoryEntry[] {
  return hist.map((h) => {
    if (h.base) return h.base;
    const r = h.vertex ? results.get(h.vertex) : undefined;
    const empty = h.emptyLayer || !r || r.diffId === null;
    return { created, created_by: h.createdBy, comment: 'buildkit.dockerfile.v0', ...(empty ? { empty_layer: true } : {}) };
  });
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
    'kiln.steps': r.steps.map((st) => ({ name: st.name, cached: st.cached, durationMs: st.durationMs, ...(st.missReason ? { missReason: st.missReason } : {}) })),
  };
  await fsp.writeFile(file, `${JSON.stringify(data, null, 2)}\n`);
}
