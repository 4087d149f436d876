import type { Digest, ImageConfig } from '../../../oci/index.js';
import type { GraphBuildOptions, SourceRef } from '../../../graph/index.js';
import type { ApplyLangCacheOptions } from '../../../langcache/index.js';
import type { Command } from '../instructions/index.js';

/** How the front end learns a base image's config; the builder implements it (local store, later a registry). */
export interface ImageResolver {
  resolve(ref: string, opts: { signal?: AbortSignal }): Promise<{ manifest: Digest; config: ImageConfig; ref: string }>;
}

/**
 * A `--build-context NAME=VALUE` as the front end sees it: a local folder (read by the runner under its name) or an
 * image reference. `FROM NAME`, `COPY --from=NAME` and `RUN --mount from=NAME` use it instead of a stage or image
 * called NAME, as BuildKit's named contexts.
 */
export type NamedContext = { type: 'local' } | { type: 'image'; ref: string };

/**
 * A step given by another front end (the SDK): its instructions as typed records, appended to the last stage and
 * dispatched as they are (no text is parsed). Each record's location names where it comes from (the SDK caller's
 * file and line); its vertices carry that location and `noCache`.
 */
export interface ProgramStep {
  /** the step's instructions (one or a few: a step run as another user is wrapped in USER records) */
  commands: Command[];
  /** the step always runs (`skipCache()`) */
  noCache?: boolean;
}

/**
 * A program step as text, for a process boundary (the local hand-off): what {@link programStepText} writes and
 * {@link programStepFromText} reads back into the same records.
 */
export interface ProgramStepText {
  /** the step's instructions as Dockerfile text (one or a few lines; a RUN may carry a heredoc) */
  instructions: string;
  /** where every instruction of the step comes from */
  location?: SourceRef;
  noCache?: boolean;
}

/**
 * What a conversion is given: the program, and the build-wide options that shape its vertices (network, language
 * caches, the skip-cache set). They are applied while the graph is built, never to a finished graph.
 */
export interface ConvertOptions extends GraphBuildOptions {
  /** Dockerfile text (for the SDK: its base) */
  text: string;
  /** steps after the text's last instruction, each with its own source location (the SDK's template steps) */
  steps?: ProgramStep[];
  /** language caches (/cache layout) on every RUN, env in the image config; `warm` copies them into the image */
  langCache?: ApplyLangCacheOptions;
  /** file name for messages (as the user passed it) */
  file: string;
  buildArgs: Record<string, string>;
  /** stage name or index to build; default the last stage */
  target?: string;
  images: ImageResolver;
  /** every step skips the cache lookup */
  noCache?: boolean;
  /** stages whose steps skip the cache lookup */
  noCacheFilter?: string[];
  /** accept `RUN --security=insecure` (a server's `allowInsecure`); refused otherwise */
  allowInsecure?: boolean;
  platform?: { os: string; architecture: string; variant?: string };
  /** `--build-context NAME=VALUE`, by name */
  namedContexts?: Record<string, NamedContext>;
  signal?: AbortSignal;
}
