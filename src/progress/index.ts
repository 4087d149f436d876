export type { ProgressEvent, ProgressSink, ProgressMode } from './types.js';
export { createProgress, createPlainProgress, createJsonProgress, createTtyProgress } from './renderers.js';
