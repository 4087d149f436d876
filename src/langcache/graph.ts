import { DEFAULT_PATH } from '../oci/index.js';
import type { BuildGraph, ExecOp, MountDef, Vertex } from '../graph/index.js';
import { isWithin, langCachePlan, withLangCacheEnv, type LangCacheOptions, type LangCachePlan } from './plan.js';

/** Options of {@link applyLangCache}. */
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
 * Turn the language caches on for a whole build graph: every RUN gets the cache mounts (unless it mounts something at
 * or above the same path itself) and the env vars (unless it sets them itself); the target image's config gets the
 * env vars too, so a container later started with a volume on /cache keeps using it. Mutates the graph.
 *
 * @example
 * const graph = await convertDockerfile({...});
 * applyLangCache(graph, { tools: ['pip'], warm: false });
 */
export function applyLangCache(graph: BuildGraph, opts: ApplyLangCacheOptions = {}): LangCachePlan {
  const plan = langCachePlan(opts);
  for (const v of graph.vertices.values()) {
    if (v.op.type !== 'exec') continue;
    const op = v.op;
    const own = op.mounts;
    const extra = plan.mounts.filter((m) => !own.some((o) => isWithin(m.target, o.target) || isWithin(o.target, m.target)));
    op.mounts = [...own, ...extra];
    op.env = withLangCacheEnv(op.env, plan, DEFAULT_PATH);
  }
  const cfg = graph.target.config;
  cfg.config = cfg.config ?? {};
  cfg.config.Env = withLangCacheEnv(cfg.config.Env ?? [], plan, DEFAULT_PATH);
  if (opts.warm) addWarmStep(graph, plan);
  return plan;
}

/** A final step copying every cache into /cache of the image, with the layout's owner and mode. */
function addWarmStep(graph: BuildGraph, plan: LangCachePlan): void {
  const target = graph.vertices.get(graph.target.vertex)!;
  const mounts: MountDef[] = plan.mounts.map((m) => ({ ...m, target: `${WARM_SOURCE}/${m.id}`, readonly: true }));
  const lines = ['set -e'];
  for (const d of plan.dirs) {
    lines.push(`mkdir -p '${d.path}' && chown ${d.uid}:${d.gid} '${d.path}' && chmod ${d.mode.toString(8)} '${d.path}'`);
  }
  for (const m of plan.mounts) lines.push(`cp -a '${WARM_SOURCE}/${m.id}/.' '${m.target}/'`);
  const env = graph.target.config.config?.Env ?? [`PATH=${DEFAULT_PATH}`];
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
  graph.vertices.set(id, v);
  graph.order.push(id);
  graph.history.push({ createdBy: 'kiln --lang-cache-warm: copy language caches into /cache', vertex: id, emptyLayer: false });
  graph.target.vertex = id;
}
