import { definitionDigests, recipeOf, type Vertex } from '../graph/index.js';
import { computeKey, KEY_FORMAT_VERSION, nextOutputId, opKeyFields, withEpoch, type KeyInputs } from './cache-key.js';
import type { RunContext, SolveEvent, SolveOptions, VertexResult } from './types.js';

/** A counting semaphore for the worker pool. */
class Pool {
  private active = 0;
  private readonly waiting: Array<() => void> = [];
  constructor(private readonly size: number) {}
  async run<T>(fn: () => Promise<T>): Promise<T> {
    if (this.active >= this.size) await new Promise<void>((r) => this.waiting.push(r));
    this.active++;
    try {
      return await fn();
    } finally {
      this.active--;
      this.waiting.shift()?.();
    }
  }
}

/**
 * The vertices the target needs, in dependency order (parent, then deps, then the vertex: a post-order walk).
 * Iterative, so a chain of 55,000 instructions needs no call-stack depth.
 */
export function closure(vertices: Map<string, Vertex>, target: string): string[] {
  const seen = new Set<string>();
  const out: string[] = [];
  // each frame: a vertex and the inputs of it still to visit (parent first, then deps in order)
  const stack: Array<{ id: string; inputs: string[]; next: number }> = [];
  const enter = (id: string): void => {
    seen.add(id);
    const v = vertices.get(id);
    if (!v) throw new Error(`graph has no vertex ${id}`);
    stack.push({ id, inputs: v.parent ? [v.parent, ...v.deps] : v.deps, next: 0 });
  };
  enter(target);
  while (stack.length > 0) {
    const top = stack[stack.length - 1]!;
    if (top.next < top.inputs.length) {
      const d = top.inputs[top.next++]!;
      if (!seen.has(d)) enter(d);
    } else {
      stack.pop();
      out.push(top.id);
    }
  }
  return out;
}

/** What every vertex of one solve shares. */
interface Solve {
  opts: SolveOptions;
  pool: Pool;
  abort: AbortController;
  emit: (e: SolveEvent) => void;
  /** definition digest of each vertex: identical work has one */
  defs: Map<string, string>;
  /** the vertex whose solve each definition's other vertices share */
  byDefinition: Map<string, string>;
  /** the solve of each vertex */
  running: Map<string, Promise<VertexResult>>;
  results: Map<string, VertexResult>;
}

/**
 * Walks the graph from the target: every vertex waits for its parent and dependencies, looks its key up, and runs
 * only on a miss. Independent vertices run in parallel, bounded by `concurrency`; vertices with the same definition
 * digest (the same work reached twice) are solved once. The first error aborts the rest.
 */
export async function solve(opts: SolveOptions): Promise<Map<string, VertexResult>> {
  const abort = new AbortController();
  const onOuterAbort = (): void => abort.abort(opts.signal?.reason);
  opts.signal?.addEventListener('abort', onOuterAbort, { once: true });
  try {
    const ids = closure(opts.graph.vertices, opts.graph.target.vertex);
    const sv: Solve = {
      opts,
      pool: new Pool(opts.concurrency ?? 4),
      abort,
      emit: opts.onEvent ?? (() => undefined),
      defs: definitionDigests(opts.graph.vertices, ids),
      byDefinition: new Map(),
      running: new Map(),
      results: new Map(),
    };
    // start everything the target needs; each vertex waits for its own inputs
    const settled = await Promise.allSettled(ids.map((id) => solveVertex(sv, id)));
    const firstErr = settled.find((s): s is PromiseRejectedResult => s.status === 'rejected');
    if (firstErr) throw abort.signal.reason ?? firstErr.reason;
    return sv.results;
  } finally {
    opts.signal?.removeEventListener('abort', onOuterAbort);
  }
}

/** The vertex's result, solved once per vertex (however many vertices read it). */
function solveVertex(sv: Solve, id: string): Promise<VertexResult> {
  let p = sv.running.get(id);
  if (!p) {
    p = solveDefinition(sv, id);
    sv.running.set(id, p);
  }
  return p;
}

/** Its definition's one solve, shared by every vertex with that definition (reported as cached for the others). */
async function solveDefinition(sv: Solve, id: string): Promise<VertexResult> {
  const def = sv.defs.get(id)!;
  const first = sv.byDefinition.get(def);
  if (!first) {
    sv.byDefinition.set(def, id);
    return doVertex(sv, id);
  }
  const shared = await solveVertex(sv, first);
  const r: VertexResult = { ...shared, vertex: id, cached: true, durationMs: 0, inputs: { ...shared.inputs, sameWorkAs: first } };
  sv.results.set(id, r);
  sv.emit({ type: 'cached', vertex: sv.opts.graph.vertices.get(id)!, result: r });
  return r;
}

async function doVertex(sv: Solve, id: string): Promise<VertexResult> {
  const v = sv.opts.graph.vertices.get(id)!;
  const [parent, ...deps] = await Promise.all([v.parent ? solveVertex(sv, v.parent) : Promise.resolve(undefined), ...v.deps.map((d) => solveVertex(sv, d))]);
  sv.abort.signal.throwIfAborted();
  const depMap = new Map<string, VertexResult>();
  v.deps.forEach((d, i) => depMap.set(d, deps[i]!));
  const ctx: RunContext = {
    parent,
    deps: depMap,
    log: (stream, data) => sv.emit({ type: 'log', vertex: v, stream, data }),
    signal: sv.abort.signal,
  };
  try {
    const r = recipeOf(v.op).isSource ? await solveSource(sv, v, ctx) : await solveStep(sv, v, ctx);
    sv.results.set(id, r);
    return r;
  } catch (err) {
    if (!sv.abort.signal.aborted) sv.emit({ type: 'error', vertex: v, error: err });
    sv.abort.abort(err);
    throw err;
  }
}

/** An image or scratch: resolved by the runner, keyed by its manifest. */
async function solveSource(sv: Solve, v: Vertex, ctx: RunContext): Promise<VertexResult> {
  const started = Date.now();
  sv.emit({ type: 'start', vertex: v, at: started });
  const src = await sv.opts.runner.resolveSource(v, ctx);
  const inputs = { version: KEY_FORMAT_VERSION, op: opKeyFields(v.op), manifest: src.manifest };
  const r: VertexResult = {
    vertex: v.id,
    key: computeKey({ version: KEY_FORMAT_VERSION, parent: '', op: { type: 'source', manifest: src.manifest }, deps: [], content: {} }),
    outputId: src.manifest === 'scratch' ? 'scratch' : src.manifest,
    layers: src.layers,
    diffId: null,
    cached: true,
    durationMs: Date.now() - started,
    inputs,
    ...(src.manifest === 'scratch' ? {} : { manifest: src.manifest }),
  };
  sv.emit({ type: 'cached', vertex: v, result: r });
  return r;
}

/**
 * The key of a step, from its op's recipe: the op's own fields, the parent's output (unless the op does not read
 * its parent), the outputs of the dependencies it does not read through a selector, and the content checksums the
 * runner computes for the paths it reads.
 */
async function stepKey(sv: Solve, v: Vertex, ctx: RunContext): Promise<{ key: string; inputs: Record<string, unknown>; readsParent: boolean }> {
  const recipe = recipeOf(v.op);
  let content = await sv.opts.runner.contentInputs(v, ctx);
  if (recipe.writesLayer && sv.opts.sourceDateEpoch !== undefined) content = withEpoch(content, sv.opts.sourceDateEpoch);
  const readsParent = recipe.readsParent();
  const selectors = recipe.selectorDeps();
  const keyInputs: KeyInputs = {
    version: KEY_FORMAT_VERSION,
    // COPY --link builds its layer on an empty tree: its key leaves the parent out, so a new base reuses it
    parent: readsParent ? ctx.parent?.outputId ?? 'scratch' : 'link',
    op: recipe.keyFields(),
    // a dependency read through a selector (COPY --from's paths) enters by the content of those paths only
    deps: v.deps.filter((d) => !selectors.includes(d)).map((d) => ctx.deps.get(d)!.outputId),
    content,
  };
  const inputs: Record<string, unknown> = { ...keyInputs, parentKey: ctx.parent?.key ?? '', parentCached: ctx.parent?.cached ?? true };
  return { key: computeKey(keyInputs), inputs, readsParent };
}

/** A step: a cache hit (local, else brought in from the shared cache), or run on the pool and recorded. */
async function solveStep(sv: Solve, v: Vertex, ctx: RunContext): Promise<VertexResult> {
  const { runner, cache, remote } = sv.opts;
  const started = Date.now();
  const { key, inputs, readsParent } = await stepKey(sv, v, ctx);
  const parentOut = ctx.parent?.outputId ?? 'scratch';
  const parentLayers = ctx.parent?.layers ?? [];
  const localHit = async (fromRemote: boolean): Promise<VertexResult | undefined> => {
    const hit = cache.get(key);
    if (!hit) return undefined;
    const usable = hit.diffId === null ? { contentId: '' } : await runner.layerUsable(hit.diffId);
    if (!usable) return undefined;
    cache.touch(key);
    const r: VertexResult = {
      vertex: v.id,
      key,
      // a layer keyed without its parent may sit on another parent than when it was recorded: its output follows this one
      outputId: readsParent ? hit.outputId : nextOutputId(parentOut, hit.diffId ? usable.contentId : null),
      layers: hit.diffId ? [...parentLayers, hit.diffId] : parentLayers,
      diffId: hit.diffId,
      cached: true,
      durationMs: Date.now() - started,
      inputs,
      ...(fromRemote ? { remote: true } : {}),
    };
    sv.emit({ type: 'cached', vertex: v, result: r });
    return r;
  };
  if (!v.noCache) {
    const local = await localHit(false);
    if (local) {
      remote?.publish({ key, cached: true });
      return local;
    }
    // a local miss: the shared cache may have it (brought in verified, then found locally like any other record)
    if (remote && (await remote.fetch(key, { signal: sv.abort.signal }))) {
      const fetched = await localHit(true);
      if (fetched) return fetched;
    }
  }
  return sv.pool.run(() => runStep(sv, v, ctx, key, inputs));
}

/** Run a missed step for real and record it (the record goes in only after its layer is committed). */
async function runStep(sv: Solve, v: Vertex, ctx: RunContext, key: string, inputs: Record<string, unknown>): Promise<VertexResult> {
  ctx.signal.throwIfAborted();
  const t0 = Date.now();
  sv.emit({ type: 'start', vertex: v, at: t0 });
  const layer = await sv.opts.runner.execute(v, ctx);
  const parentLayers = ctx.parent?.layers ?? [];
  const outputId = nextOutputId(ctx.parent?.outputId ?? 'scratch', layer ? layer.contentId : null);
  sv.opts.cache.put({ key, outputId, diffId: layer?.diffId ?? null, name: v.name, inputs });
  const r: VertexResult = {
    vertex: v.id,
    key,
    outputId,
    layers: layer ? [...parentLayers, layer.diffId] : parentLayers,
    diffId: layer?.diffId ?? null,
    cached: false,
    durationMs: Date.now() - t0,
    inputs,
  };
  sv.opts.remote?.publish({ key, cached: false });
  sv.emit({ type: 'done', vertex: v, result: r });
  return r;
}
