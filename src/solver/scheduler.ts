import type { Vertex } from '../graph/index.js';
import { computeKey, KEY_FORMAT_VERSION, nextOutputId, opKeyFields, type KeyInputs } from './cache-key.js';
import type { RunContext, SolveOptions, VertexResult } from './types.js';

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

/** COPY --link whose result does not depend on the parent tree (a named --chown is resolved in the parent). */
function isLinkedCopy(v: Vertex): boolean {
  return v.op.type === 'copy' && v.op.link && (v.op.chown === '' || /^\d+(:\d+)?$/.test(v.op.chown));
}

/** Dependencies the runner keyed by the content of the paths read (`content.coveredDeps`). */
function coveredDeps(content: Record<string, unknown>): string[] {
  const c = content.coveredDeps;
  return Array.isArray(c) ? c.filter((x): x is string => typeof x === 'string') : [];
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

/**
 * Walks the graph from the target: every vertex waits for its parent and dependencies, looks its key up, and runs
 * only on a miss. Independent vertices run in parallel, bounded by `concurrency`. The first error aborts the rest.
 */
export async function solve(opts: SolveOptions): Promise<Map<string, VertexResult>> {
  const { graph, runner, cache } = opts;
  const pool = new Pool(opts.concurrency ?? 4);
  const abort = new AbortController();
  const onOuterAbort = (): void => abort.abort(opts.signal?.reason);
  opts.signal?.addEventListener('abort', onOuterAbort, { once: true });
  const emit = opts.onEvent ?? (() => undefined);
  const results = new Map<string, VertexResult>();
  const running = new Map<string, Promise<VertexResult>>();

  const solveVertex = (id: string): Promise<VertexResult> => {
    let p = running.get(id);
    if (!p) {
      p = doVertex(id);
      running.set(id, p);
    }
    return p;
  };

  async function doVertex(id: string): Promise<VertexResult> {
    const v = graph.vertices.get(id)!;
    const [parent, ...deps] = await Promise.all([v.parent ? solveVertex(v.parent) : Promise.resolve(undefined), ...v.deps.map(solveVertex)]);
    abort.signal.throwIfAborted();
    const depMap = new Map<string, VertexResult>();
    v.deps.forEach((d, i) => depMap.set(d, deps[i]!));
    const ctx: RunContext = {
      parent,
      deps: depMap,
      log: (stream, data) => emit({ type: 'log', vertex: v, stream, data }),
      signal: abort.signal,
    };
    const started = Date.now();
    try {
      const r = await run(v, ctx, started);
      results.set(id, r);
      return r;
    } catch (err) {
      if (!abort.signal.aborted) emit({ type: 'error', vertex: v, error: err });
      abort.abort(err);
      throw err;
    }
  }

  async function run(v: Vertex, ctx: RunContext, started: number): Promise<VertexResult> {
    if (v.op.type === 'source') {
      emit({ type: 'start', vertex: v, at: started });
      const src = await runner.resolveSource(v, ctx);
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
      emit({ type: 'cached', vertex: v, result: r });
      return r;
    }
    const parentOut = ctx.parent?.outputId ?? 'scratch';
    const content = await runner.contentInputs(v, ctx);
    const linked = isLinkedCopy(v);
    const keyInputs: KeyInputs = {
      version: KEY_FORMAT_VERSION,
      // COPY --link builds its layer on an empty tree: its key leaves the parent out, so a new base reuses it
      parent: linked ? 'link' : parentOut,
      op: opKeyFields(v.op),
      // a dependency whose read paths are keyed by content (COPY --from's selector digest) enters by that content only
      deps: v.deps.filter((d) => !coveredDeps(content).includes(d)).map((d) => ctx.deps.get(d)!.outputId),
      content,
    };
    const key = computeKey(keyInputs);
    const inputs: Record<string, unknown> = { ...keyInputs, parentKey: ctx.parent?.key ?? '', parentCached: ctx.parent?.cached ?? true };
    const parentLayers = ctx.parent?.layers ?? [];

    const localHit = async (remote: boolean): Promise<VertexResult | undefined> => {
      const hit = cache.get(key);
      if (hit) {
        const usable = hit.diffId === null ? { contentId: '' } : await runner.layerUsable(hit.diffId);
        if (usable) {
          cache.touch(key);
          const r: VertexResult = {
            vertex: v.id,
            key,
            // a linked layer may sit on another parent than when it was recorded: its output follows this parent
            outputId: linked ? nextOutputId(parentOut, hit.diffId ? usable.contentId : null) : hit.outputId,
            layers: hit.diffId ? [...parentLayers, hit.diffId] : parentLayers,
            diffId: hit.diffId,
            cached: true,
            durationMs: Date.now() - started,
            inputs,
            ...(remote ? { remote: true } : {}),
          };
          emit({ type: 'cached', vertex: v, result: r });
          return r;
        }
      }
      return undefined;
    };
    if (!v.noCache) {
      const local = await localHit(false);
      if (local) {
        opts.remote?.publish({ key, cached: true });
        return local;
      }
      // a local miss: the shared cache may have it (brought in verified, then found locally like any other record)
      if (opts.remote && (await opts.remote.fetch(key, { signal: abort.signal }))) {
        const fetched = await localHit(true);
        if (fetched) return fetched;
      }
    }

    return pool.run(async () => {
      ctx.signal.throwIfAborted();
      const t0 = Date.now();
      emit({ type: 'start', vertex: v, at: t0 });
      const layer = await runner.execute(v, ctx);
      const outputId = nextOutputId(parentOut, layer ? layer.contentId : null);
      cache.put({ key, outputId, diffId: layer?.diffId ?? null, name: v.name, inputs });
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
      opts.remote?.publish({ key, cached: false });
      emit({ type: 'done', vertex: v, result: r });
      return r;
    });
  }

  try {
    const ids = closure(graph.vertices, graph.target.vertex);
    // start everything the target needs; each vertex waits for its own inputs
    const all = ids.map((id) => solveVertex(id));
    const settled = await Promise.allSettled(all);
    const firstErr = settled.find((s): s is PromiseRejectedResult => s.status === 'rejected');
    if (firstErr) throw abort.signal.reason ?? firstErr.reason;
    return results;
  } finally {
    opts.signal?.removeEventListener('abort', onOuterAbort);
  }
}
