/**
 * Why a step missed: compares the inputs each cache key was made from with the last build of the same target;
 * build logs and history diffs.
 */
export { compareInputs } from './compare.js';
export type { KeyInputsRecord, CompareContext } from './compare.js';
export { explainBuild, explainMiss, findPreviousBuild, diffBuilds } from './explain.js';
export type { ExplainStep, ExplainSource, StepDiff } from './explain.js';
export { openBuildLog, readBuildLog, buildLogPath } from './build-log.js';
export type { BuildLog, LogEvent } from './build-log.js';
export { explainSolve } from './solve-explain.js';
