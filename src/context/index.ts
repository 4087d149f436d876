/**
 * The build context: .dockerignore matching, the context walk BuildKit's fsutil performs, and content
 * checksums of exactly what a COPY reads (for cache keys).
 */
export {
  createPatternMatcher,
  matchesDeprecated,
  describePattern,
} from './pattern-matcher.js';
export type { PatternMatcher, PatternKind } from './pattern-matcher.js';
export { parseIgnoreFile, readIgnorePatterns } from './ignore-file.js';
export { walkContext } from './walk.js';
export type { ContextEntry, ContextFilter, WalkContextOptions } from './walk.js';
export { checksumSources, matchSources, createMemoryStatCache } from './checksum.js';
export type { StatCache, ChecksumResult, ChecksumOptions, SourceOptions } from './checksum.js';
export { resolveInside } from './resolve.js';
/** Go's `path.Clean` on '/'-separated paths (shared with the COPY implementation). */
export { cleanPath } from './path-utils.js';
export { readBoundedText, MAX_DOCKERFILE_BYTES, MAX_IGNORE_FILE_BYTES } from './bounded-read.js';
