export type { Extent } from './extents.js';
export { copySparseFile, dataExtents, hasHoles } from './extents.js';
