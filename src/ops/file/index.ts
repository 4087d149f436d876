export { copyInto, normalizeDest } from './copy-into.js';
export { fetchUrl } from './fetch-url.js';
export { archiveContentDigest, isArchive, unpackArchive } from './archive.js';
export type { UnpackOptions } from './archive.js';
export { parseChmod } from './mode.js';
export type { ChmodSpec } from './mode.js';
export type { CopyRequest, CopyResult, FetchUrlOptions, FetchUrlResult, Owner } from './types.js';
