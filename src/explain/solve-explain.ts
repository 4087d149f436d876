import type { BuildRecord, Metadata } from '../metadata/index.js';
import type { Vertex } from '../graph/index.js';
import type { VertexResult } from '../solver/index.js';
import { explainBuild, type ExplainStep } from './explain.js';

/**
 * Miss reasons for the steps of a solved build (`needed` order, as in `kiln.steps`), against the last build of the
 * same target recorded in `db`. Undefined entries are cached steps.
 */
export function explainSolve(opts: {
  db: Pick<Metadata, 'builds' | 'cacheRecords'>;
  record: Pick<BuildRecord, 'id' | 'context' | 'dockerfile' | 'target' | 'started' | 'args'>;
  needed: string[];
  vertices: Map<string, Vertex>;
  results: Map<string, VertexResult>;
  /** why steps marked noCache skipped the cache */
  skipReason: string;
}): Array<string | undefined> {
  const steps: ExplainStep[] = opts.needed.map((id) => {
    const v = opts.vertices.get(id)!;
    const r = opts.results.get(id)!;
    const parent = v.parent ? opts.vertices.get(v.parent) : undefined;
    return {
      name: v.name,
      cached: r.cached,
      key: r.key,
      inputs: r.inputs,
      ...(v.noCache ? { skipped: opts.skipReason } : {}),
      parentIsSource: parent?.op.type === 'source',
      ...(parent ? { parentName: parent.name } : {}),
    };
  });
  // nothing missed: no reason to find, so the build history is not read (a warm rebuild's every build)
  if (steps.every((st) => st.cached)) return steps.map(() => undefined);
  return explainBuild({
    buildId: opts.record.id,
    context: opts.record.context,
    dockerfile: opts.record.dockerfile,
    target: opts.record.target,
    started: opts.record.started,
    args: opts.record.args,
    steps,
    source: { listBuilds: () => opts.db.builds.listBuilds(), inputsOf: (k) => opts.db.cacheRecords.getCache(k)?.inputs },
  }).reasons;
}
