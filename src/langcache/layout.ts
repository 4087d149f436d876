/**
 * The language cache layout under `/cache` (the seed documents' container build system): one directory per tool,
 * the environment variables that point the tool at it, and which parts are pure download/build caches (mounted as
 * cache mounts during builds, never stored in a layer) versus install locations (programs a RUN installs there are
 * part of the image and must not vanish with a cache mount).
 */

/** One tool's place in the `/cache` layout. */
export interface LangCacheEntry {
  /** short name; the cache mount id is `lang-<tool>` */
  tool: string;
  /** the tool's directory under /cache */
  dir: string;
  /** environment variables pointing the tool at `dir` */
  env: Record<string, string>;
  /**
   * Sub-paths of `dir` that are pure caches (downloads, build artifacts), mounted as cache mounts during builds.
   * `'.'` is the whole directory; empty for install locations (only the env var is set).
   */
  cachePaths: string[];
}

/** Root of the layout inside images and containers. */
export const LANG_CACHE_ROOT = '/cache';

/** The layout, in the seed document's order. */
export const LANG_CACHE_LAYOUT: readonly LangCacheEntry[] = [
  { tool: 'pip', dir: '/cache/pip', env: { PIP_CACHE_DIR: '/cache/pip' }, cachePaths: ['.'] },
  // poetry keeps virtualenvs under its cache dir by default: only its download caches are mounted
  { tool: 'poetry', dir: '/cache/poetry', env: { POETRY_CACHE_DIR: '/cache/poetry' }, cachePaths: ['cache', 'artifacts'] },
  // pipx venvs and their binaries are installed programs
  { tool: 'pipx', dir: '/cache/pipx', env: { PIPX_HOME: '/cache/pipx', PIPX_BIN_DIR: '/cache/pipx/bin' }, cachePaths: [] },
  { tool: 'npm', dir: '/cache/npm', env: { NPM_CONFIG_CACHE: '/cache/npm' }, cachePaths: ['.'] },
  // global npm packages are installed programs
  { tool: 'npm-global', dir: '/cache/npm-global', env: { NPM_CONFIG_PREFIX: '/cache/npm-global' }, cachePaths: [] },
  // PNPM_HOME holds global binaries; its store/ is the content-addressed download store
  { tool: 'pnpm', dir: '/cache/pnpm', env: { PNPM_HOME: '/cache/pnpm' }, cachePaths: ['store'] },
  { tool: 'yarn', dir: '/cache/yarn', env: { YARN_CACHE_FOLDER: '/cache/yarn' }, cachePaths: ['.'] },
  // CARGO_HOME/bin holds `cargo install`ed programs; registry/ and git/ are downloads
  { tool: 'cargo', dir: '/cache/cargo', env: { CARGO_HOME: '/cache/cargo' }, cachePaths: ['registry', 'git'] },
  { tool: 'go-mod', dir: '/cache/go/mod', env: { GOMODCACHE: '/cache/go/mod' }, cachePaths: ['.'] },
  { tool: 'go-build', dir: '/cache/go/build', env: { GOCACHE: '/cache/go/build' }, cachePaths: ['.'] },
  // installed gems stay in the image; their downloaded .gem files (GEM_HOME/cache) do not
  { tool: 'ruby-gems', dir: '/cache/ruby/gems', env: { GEM_HOME: '/cache/ruby/gems', GEM_PATH: '/cache/ruby/gems' }, cachePaths: ['cache'] },
  { tool: 'ruby-bundle', dir: '/cache/ruby/bundle', env: { BUNDLE_PATH: '/cache/ruby/bundle' }, cachePaths: [] },
  { tool: 'r-library', dir: '/cache/r/library', env: { R_LIBS_USER: '/cache/r/library' }, cachePaths: [] },
  { tool: 'maven', dir: '/cache/maven', env: { MAVEN_OPTS: '-Dmaven.repo.local=/cache/maven' }, cachePaths: ['.'] },
  { tool: 'gradle', dir: '/cache/gradle', env: { GRADLE_USER_HOME: '/cache/gradle' }, cachePaths: ['.'] },
];

/** Directories on PATH for programs installed into the layout. */
export const LANG_CACHE_PATH_DIRS: readonly string[] = ['/cache/npm-global/bin', '/cache/pipx/bin', '/cache/cargo/bin', '/cache/ruby/gems/bin', '/cache/pnpm'];

/** Names of all tools of the layout. */
export function langCacheTools(): string[] {
  return LANG_CACHE_LAYOUT.map((e) => e.tool);
}
