import { DEFAULT_PATH } from '../oci/index.js';
import type { BuildGraph, ExecOp, MountDef, Vertex } from '../graph/index.js';
import { isWithin, langCachePlan, withLangCacheEnv, type LangCacheOptions, type LangCachePlan } from './plan.js';

/** Options of {@link withLangCache}. */
export interface ApplyLangCacheOptions extends LangCacheOptions {
  /**
   * Cache warming: after the last step, copy the caches' contents into the image (a final layer under /cache), for
   * images that must start with packages already downloaded. The step always runs (its input is the caches).
   */
  warm?: boolean;
}

/** Where the warm step sees the caches (read-only) before copying them to their place. */
const WARM_SOURCE = '/.kiln-lang-cache';

/**
 * The build graph with the language caches turned on, as a new graph (the given one is left as it was): every RUN gets
 * the cache mounts (unless it mounts something at or above the same path itself) and the env vars (unless it sets them
 * itself); the target image's config gets the env vars too, so a container later started with a volume on /cache
 * keeps using it. The Dockerfile conversion applies it before any key is computed (its `langCache` option).
 *
 * @example
 * const cached = withLangCache(graph, { tools: ['pip'], warm: false });
 */
export function withLangCache(graph: BuildGraph, opts: ApplyLangCacheOptions = {}): BuildGraph {
  const plan = langCachePlan(opts);
  const vertices = new Map<string, Vertex>();
  for (const [id, v] of graph.vertices) {
    if (v.op.type !== 'exec') {
      vertices.set(id, v);
      continue;
    }
    const own = v.op.mounts;
    const extra = plan.mounts.filter((m) => !own.some((o) => isWithin(m.target, o.target) || isWithin(o.target, m.target)));
    vertices.set(id, { ...v, op: { ...v.op, mounts: [...own, ...extra], env: withLangCacheEnv(v.op.env, plan, DEFAULT_PATH) } });
  }
  const config = structuredClone(graph.target.config);
  config.config = config.config ?? {};
  config.config.Env = withLangCacheEnv(config.config.Env ?? [], plan, DEFAULT_PATH);
  const out: BuildGraph = { ...graph, vertices, order: [...graph.order], history: [...graph.history], target: { vertex: graph.target.vertex, config } };
  return opts.warm ? withWarmStep(out, plan) : out;
}

/** A final step copying every cache into /cache of the image, with the layout's owner and mode (`out` is new). */
function withWarmStep(out: BuildGraph, plan: LangCachePlan): BuildGraph {
  const target = out.vertices.get(out.target.vertex)!;
  const mounts: MountDef[] = plan.mounts.map((m) => ({ ...m, target: `${WARM_SOURCE}/${m.id}`, readonly: true }));
  const lines = ['set -e'];
  for (const d of plan.dirs) {
    lines.push(`mkdir -p '${d.path}' && chown ${d.uid}:${d.gid} '${d.path}' && chmod ${d.mode.toString(8)} '${d.path}'`);
  }
  for (const m of plan.mounts) lines.push(`cp -a '${WARM_SOURCE}/${m.id}/.' '${m.target}/'`);
  const env = out.target.config.config?.Env ?? [`PATH=${DEFAULT_PATH}`];
  const op: ExecOp = { type: 'exec', args: ['/bin/sh', '-c', lines.join('\n')], env, cwd: '/', user: '0:0', network: 'none', mounts };
  const id = `${target.id}~lang-cache-warm`;
  const v: Vertex = {
    id,
    name: `[${target.stage}] kiln: warm language caches into /cache`,
    stage: target.stage,
    op,
    parent: target.id,
    deps: [],
    noCache: true,
  };
  out.vertices.set(id, v);
  out.order.push(id);
  out.history.push({ createdBy: 'kiln --lang-cache-warm: copy language caches into /cache', vertex: id, emptyLayer: false });
  out.target.vertex = id;
  return out;
}
