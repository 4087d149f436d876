/**
 * Build sources: `.dockerignore` matching, the context walk BuildKit's fsutil performs, and the one resolution of a
 * COPY/ADD step's sources (context, stage or image root) into the frozen entry list that both the cache key and the
 * copier use.
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
export { resolveSources, SOURCES_FORMAT } from './sources.js';
export type { ResolvedSources, ResolveSourcesOptions, SourceEntry, SourceEntryType, SourceUnit, StatCache } from './sources.js';
export { resolveInside } from './resolve.js';
export { createContextWatch } from './watch.js';
export type { ContextWatch, ContextWatchOptions, WatchCounters, WatchedTree } from './watch.js';
export { absPath, hostTree, lstatOrUndefined, resolveInRoot } from './source-tree.js';
export type { RootedFs, TreeReads } from './source-tree.js';
/** Go's `path.Clean` on '/'-separated paths and the source-word rules (shared with the COPY implementation). */
export { cleanPath } from './path-utils.js';
export { cleanAbs, containsWildcards, splitWildcards } from './source-words.js';
export { readBoundedText, MAX_DOCKERFILE_BYTES, MAX_IGNORE_FILE_BYTES } from './bounded-read.js';
