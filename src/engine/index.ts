export { openState, defaultRoot } from './state.js';
export type { State } from './state.js';
export { runBuild, writeMetadataFile } from './build.js';
export type { BuildRequest, BuildResult, BuildOutput, StepReport } from './build.js';
export { loadLocalImage, importRootfs, normalizeRef, registerLayers, unpackImage, writeImage, pullToState, resolveImage } from './images.js';
export type { PullOptions } from './images.js';
export { validateImageName } from './image-name.js';
export type { SharedCacheReport } from './shared-cache.js';
