export type { LayerInfo, WriteLayerOptions, ApplyLayerOptions, TarEntryInfo, ListLayerOptions } from './types.js';
export { writeLayer, DEFAULT_GZIP_LEVEL } from './write-layer.js';
export { applyLayer } from './apply-layer.js';
export { listLayer } from './list-layer.js';
