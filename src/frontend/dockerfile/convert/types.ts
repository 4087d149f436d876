import type { Digest, ImageConfig } from '../../../oci/index.js';

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

export interface ConvertOptions {
  /** Dockerfile text */
  text: string;
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
