import type { BuildRecord } from '../metadata/index.js';
import { compareInputs, type KeyInputsRecord } from './compare.js';

/** A step of the current build as explain needs it. */
export interface ExplainStep {
  name: string;
  cached: boolean;
  key: string;
  /** the inputs its key was computed from (VertexResult.inputs) */
  inputs: Record<string, unknown>;
  /** why the cache was not consulted (`--no-cache`, `--no-cache-filter`), when it was skipped */
  skipped?: string;
  parentIsSource: boolean;
  parentName?: string;
}

/** Where explain reads older builds and recorded key inputs. */
export interface ExplainSource {
  listBuilds(): BuildRecord[];
  /** inputs stored with a cache record, undefined when the record is gone */
  inputsOf(key: string): Record<string, unknown> | undefined;
}

/** The last successful build of the same target (context + Dockerfile + target stage), other than `excludeId`. */
export function findPreviousBuild(builds: BuildRecord[], q: { context: string; dockerfile: string; target: string; excludeId?: string; before?: number }): BuildRecord | undefined {
  return builds
    .filter((b) => b.id !== q.excludeId && b.status === 'success' && b.context === q.context && b.dockerfile === q.dockerfile && b.target === q.target)
    .filter((b) => q.before === undefined || b.started < q.before)
    .sort((a, b) => b.started - a.started)[0];
}

/**
 * Why one step missed, compared with the same step position of `previous`: the cache was skipped, nothing was ever
 * cached, the record was removed, or the first input that differs.
 */
export function explainMiss(opts: { step: ExplainStep; index: number; previous: BuildRecord | undefined; argsNow: Record<string, string>; source: ExplainSource }): string | undefined {
  const { step, previous } = opts;
  if (step.cached) return undefined;
  if (step.skipped) return `cache skipped (${step.skipped})`;
  if (!previous) return 'never cached: first build of this target';
  const prevStep = previous.steps[opts.index] as { key?: string; name?: string } | undefined;
  if (!prevStep?.key) return `never cached: the last build of this target (${previous.id}) had no step ${opts.index + 1}`;
  if (prevStep.key === step.key) return 'cache record was removed (pruned) or its layer was missing';
  const before = opts.source.inputsOf(prevStep.key) as KeyInputsRecord | undefined;
  const after = step.inputs as KeyInputsRecord;
  const ctx = { argsBefore: previous.args, argsAfter: opts.argsNow, parentIsSource: step.parentIsSource, ...(step.parentName ? { parentName: step.parentName } : {}) };
  if (!before) {
    if (after.parentCached === false) return `parent step was rebuilt${step.parentName ? `: ${step.parentName}` : ''}`;
    return `never cached: the record of build ${previous.id} for this step was pruned, so its inputs are unknown`;
  }
  return compareInputs(before, after, ctx) ?? 'inputs are the same as last time but no usable record was found';
}

/**
 * Miss reasons for every step of a finished build (undefined for cached steps), against the last build of the same
 * target.
 */
export function explainBuild(opts: { buildId: string; context: string; dockerfile: string; target: string; started: number; args: Record<string, string>; steps: ExplainStep[]; source: ExplainSource }): { previous?: string; reasons: Array<string | undefined> } {
  const previous = findPreviousBuild(opts.source.listBuilds(), { context: opts.context, dockerfile: opts.dockerfile, target: opts.target, excludeId: opts.buildId, before: opts.started + 1 });
  const reasons = opts.steps.map((step, index) => explainMiss({ step, index, previous, argsNow: opts.args, source: opts.source }));
  return { ...(previous ? { previous: previous.id } : {}), reasons };
}

/** One row of `kiln history diff A B`. */
export interface StepDiff {
  index: number;
  name: string;
  /** same key in both builds */
  same: boolean;
  /** what differs (B relative to A), when not the same */
  reason?: string;
}

/**
 * Compare two recorded builds step by step (by position): the same key, or the first input that differs. Inputs come
 * from the cache records the steps' keys name; a pruned record is reported as such.
 */
export function diffBuilds(a: BuildRecord, b: BuildRecord, source: ExplainSource): StepDiff[] {
  const out: StepDiff[] = [];
  const n = Math.max(a.steps.length, b.steps.length);
  for (let i = 0; i < n; i++) {
    const sa = a.steps[i] as { key?: string; name?: string } | undefined;
    const sb = b.steps[i] as { key?: string; name?: string; cached?: boolean } | undefined;
    const name = sb?.name ?? sa?.name ?? `step ${i + 1}`;
    if (!sa) {
      out.push({ index: i, name, same: false, reason: `only in ${b.id}` });
      continue;
    }
    if (!sb) {
      out.push({ index: i, name, same: false, reason: `only in ${a.id}` });
      continue;
    }
    if (sa.key === sb.key) {
      out.push({ index: i, name, same: true });
      continue;
    }
    const ia = sa.key ? source.inputsOf(sa.key) : undefined;
    const ib = sb.key ? source.inputsOf(sb.key) : undefined;
    let reason: string;
    if (!ia || !ib) reason = `inputs no longer recorded (cache record of ${!ia ? a.id : b.id} was pruned)`;
    else {
      const parentKey = (ib as KeyInputsRecord).parentKey;
      const parent = (b.steps as Array<{ key?: string; name?: string }>).find((x) => parentKey && x.key === parentKey);
      const parentIsSource = !!parent?.name && /^(\[[^\]]*\]\s*)?FROM\s/.test(parent.name);
      reason = compareInputs(ia as KeyInputsRecord, ib as KeyInputsRecord, { argsBefore: a.args, argsAfter: b.args, parentIsSource, ...(parent?.name ? { parentName: parent.name } : {}) }) ?? 'same inputs, different key';
    }
    out.push({ index: i, name, same: false, reason });
  }
  return out;
}
