export type { VertexResult, RunContext, OpRunner, CacheIndex, SolveEvent, SolveOptions, RemoteCache } from './types.js';
export { solve, closure } from './scheduler.js';
export { computeKey, opKeyFields, nextOutputId, withEpoch, KEY_FORMAT_VERSION } from './cache-key.js';
export type { KeyInputs } from './cache-key.js';
