import type { BuildInfo, BuildOptions, BuildStatus, RemoteOptions, TemplateData } from './types.js';

/** A template name and its tags, as `Template.list` gives them. */
export interface TemplateListing {
  name: string;
  tags: Array<{ tag: string; digest: string }>;
}

/**
 * Where one call's templates are built and kept: this machine's engine and image store, or a kiln build service.
 * The SDK describes templates; a backend builds them (the package entry, src/api, gives the SDK one).
 */
export interface TemplateBackend {
  /** build and wait for the result */
  build(data: TemplateData, opts: BuildOptions): Promise<BuildInfo>;
  /** start a build the backend follows itself and return at once; absent: the SDK runs `build` in the background */
  start?(data: TemplateData, opts: BuildOptions): Promise<BuildInfo>;
  /** the status of a build `start` began (with `start`) */
  status?(buildId: string): Promise<BuildStatus>;
  exists(name: string): Promise<boolean>;
  list(): Promise<TemplateListing[]>;
  delete(name: string): Promise<boolean>;
}

/**
 * What `Template.build`, `exists`, `list` and the rest call: picks the backend for a call's options (a service from
 * `apiKey`/`baseUrl` or KILN_API_KEY/KILN_HOST, else the local store under `root`).
 *
 * @example
 * const Template = templateConstructor({ backend: async () => myBackend });
 */
export interface Builder {
  backend(opts: RemoteOptions & { root?: string }): Promise<TemplateBackend>;
}
