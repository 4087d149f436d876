export type { ActiveSnapshot, Snapshotter } from './types.js';
export { createOverlaySnapshotter } from './overlay/overlay-snapshotter.js';
export { dropCopyUps } from './overlay/copy-ups.js';
export type { SnapshotIndex, OverlaySnapshotterOptions } from './overlay/overlay-snapshotter.js';
