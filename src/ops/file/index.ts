export { copyInto, normalizeDest } from './copy-into.js';
export { fetchUrl } from './fetch-url.js';
export { isArchive, unpackArchive } from './archive.js';
export type { UnpackOptions } from './archive.js';
export { PatternMatcher } from './patterns.js';
export { goFilepathMatch, containsWildcards } from './go-path.js';
export { parseChmod } from './mode.js';
export type { ChmodSpec } from './mode.js';
export type { CopyRequest, CopyResult, FileReuse, FetchUrlOptions, FetchUrlResult, Owner } from './types.js';
