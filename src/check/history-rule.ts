import type { BuildRecord } from '../metadata/index.js';
import type { Stage } from '../frontend/dockerfile/instructions/index.js';
import type { Finding } from './rules.js';

interface Step {
  name?: string;
  cached?: boolean;
  durationMs?: number;
  line?: number;
  missReason?: string;
}

const bare = (name: string): string => name.replace(/^\[[^\]]*\]\s*/, '').replace(/\s+/g, ' ').trim();

/**
 * With recorded builds of this Dockerfile: the step that starts a rebuild most often (the first missed step whose
 * reason is its own input, not a rebuilt parent), how often, and what the rebuilds it starts cost. WARN when it
 * invalidated at least half of the builds and RUN steps re-ran after it; INFO otherwise.
 */
export function frequentInvalidation(opts: { builds: BuildRecord[]; dockerfile: string; stages: Stage[]; file: string }): Finding[] {
  const builds = opts.builds.filter((b) => b.status === 'success' && b.dockerfile === opts.dockerfile);
  const stats = new Map<string, { count: number; costMs: number; reruns: number; runsAfter: number; line?: number }>();
  let considered = 0;
  for (const b of builds) {
    const steps = b.steps as Step[];
    const first = steps.findIndex((st) => st.cached === false && !/^never cached: first build|^cache skipped/.test(st.missReason ?? ''));
    if (steps.some((st) => /^never cached: first build/.test(st.missReason ?? ''))) continue;
    considered++;
    if (first < 0) continue;
    const st = steps[first]!;
    const key = bare(st.name ?? '');
    const after = steps.slice(first).filter((x) => x.cached === false);
    const s = stats.get(key) ?? { count: 0, costMs: 0, reruns: 0, runsAfter: 0, ...(st.line ? { line: st.line } : {}) };
    s.count++;
    s.costMs += after.reduce((n, x) => n + (x.durationMs ?? 0), 0);
    s.reruns += after.length;
    s.runsAfter += after.slice(1).filter((x) => /^RUN\b/.test(bare(x.name ?? ''))).length;
    stats.set(key, s);
  }
  if (considered < 2 || stats.size === 0) return [];
  const [name, s] = [...stats].sort((a, b) => b[1].count - a[1].count || b[1].costMs - a[1].costMs)[0]!;
  const line = findLine(opts.stages, name) ?? s.line ?? 1;
  const avgMs = s.costMs / s.count;
  const warn = s.count * 2 >= considered && s.runsAfter > 0;
  return [{
    level: warn ? 'WARN' : 'INFO',
    rule: 'FrequentlyInvalidatedStep',
    message: `"${name}" invalidated the cache in ${s.count} of ${considered} recorded rebuilds; each time ${(s.reruns / s.count).toFixed(1)} steps re-ran (${(avgMs / 1000).toFixed(1)}s on average)${warn ? '; move what changes often later, or copy less in this step' : ''}`,
    file: opts.file,
    line,
  }];
}

function findLine(stages: Stage[], name: string): number | undefined {
  for (const s of stages) {
    for (const c of s.commands) if (c.original.replace(/\s+/g, ' ').trim() === name) return c.location.startLine;
  }
  return undefined;
}
