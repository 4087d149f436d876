export { openState, defaultRoot } from './state.js';
export type { State } from './state.js';
export { runBuild, writeMetadataFile } from './build.js';
export type { BuildRequest, BuildResult, BuildOutput, StepReport } from './build.js';
export { loadLocalImage, importRootfs, normalizeRef, registerLayers, writeImage } from './images.js';
