export { runContainer, parseVolumeSpec, mergeEnv } from './run.js';
export type { RunContainerOptions, VolumeSpec } from './run.js';
export { createVolume, inspectVolume, listVolumes, removeVolumes, volumesDiskUsage, useVolume, isVolumeName } from './volumes.js';
export type { VolumeInfo } from './volumes.js';
