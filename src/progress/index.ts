export type { ProgressEvent, ProgressSink, ProgressMode } from './types.js';
export { createProgress, createPlainProgress, createJsonProgress, createTtyProgress } from './renderers.js';
export { trace } from './trace.js';
