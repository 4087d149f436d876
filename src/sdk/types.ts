/**
 * The template SDK's data: what a template is made of (plain, JSON-friendly), the options of each method, and the
 * options and result of a build.
 */

/** Credentials for a private base image (kept out of `toJSON()` and of every log). */
export interface RegistryCredentials {
  username: string;
  password: string;
}

/** AWS ECR credentials (`fromAWSRegistry`). */
export interface AWSRegistryCredentials {
  accessKeyId: string;
  secretAccessKey: string;
  region: string;
}

/** GCP Artifact Registry credentials (`fromGCPRegistry`): a service-account key, as a file path or the parsed JSON. */
export interface GCPRegistryCredentials {
  serviceAccountJSON: string | Record<string, unknown>;
}

/** One item of `copyItems`: a `copy` with its own options. */
export interface CopyItem extends CopyOptions {
  src: string | string[];
  dest: string;
}

/** Options of `bunInstall`. */
export interface BunInstallOptions {
  /** `bun install -g` */
  global?: boolean;
  /** `bun add --dev` */
  dev?: boolean;
}

/** Where a template starts. */
export type TemplateBase =
  | { type: 'image'; ref: string; credentials?: RegistryCredentials; aws?: AWSRegistryCredentials }
  | { type: 'dockerfile'; content: string };

/** Options of `aptInstall`. */
export interface AptInstallOptions {
  /** pass `--no-install-recommends` (smaller images); default false */
  noInstallRecommends?: boolean;
}

/** Options of `pipInstall` when it installs from a requirements file. */
export interface PipInstallOptions {
  /** a requirements file in the build context (relative to `contextPath`); it is mounted for the step, never copied */
  requirements: string;
  /** more packages to install in the same step */
  packages?: string[];
}

/** Options of `npmInstall`. */
export interface NpmInstallOptions {
  /** `npm install -g` */
  global?: boolean;
  /** `npm install --save-dev` */
  dev?: boolean;
}

/** Options of `runCmd`. */
export interface RunCmdOptions {
  /** run as this user (name or uid[:gid]); the template's user is unchanged for later steps */
  user?: string;
  /**
   * Language caches to mount for the command, by tool name from the `/cache` layout (`pip`, `poetry`, `npm`, `pnpm`,
   * `yarn`, `go`, `cargo`, `maven`, `gradle`, ...), with their environment variables set: for install commands the
   * package methods do not cover.
   */
  caches?: string[];
}

/** Options of `copy`. */
export interface CopyOptions {
  /** owner of the copied files, `user`, `user:group` or `uid:gid` (default 0:0) */
  owner?: string;
  /** permission bits for every copied file and folder, e.g. `0o755` or `'755'` */
  mode?: number | string;
  /**
   * Follow symbolic links below copied folders and copy the files they point to. Default false: a link inside a
   * copied folder is copied as a link; a source that is itself a link is followed either way (as `COPY` does).
   * `true` is recorded but not supported by the engine yet: building such a template fails with
   * ERR_KILN_NOT_SUPPORTED.
   */
  resolveSymlinks?: boolean;
}

/** Options of `remove`. */
export interface RemoveOptions {
  /** remove folders with their contents; default true */
  recursive?: boolean;
  /** no error when the path does not exist; default true */
  force?: boolean;
}

/** Options of `rename`, `makeSymlink`. */
export interface ForceOptions {
  /** replace an existing destination; default false */
  force?: boolean;
}

/** Options of `makeDir`. */
export interface MakeDirOptions {
  /** permission bits of the new folders, e.g. `0o750` */
  mode?: number | string;
}

/** Options of `gitClone`. */
export interface GitCloneOptions {
  /** branch or tag to check out */
  branch?: string;
  /** shallow clone with this many commits */
  depth?: number;
}

/** A readiness check: how a sandbox started from the image knows the start command is ready. */
export interface ReadyCheck {
  kind: 'port' | 'url' | 'file' | 'process' | 'timeout' | 'command';
  /** the shell command that exits 0 once ready */
  cmd: string;
  port?: number;
  url?: string;
  statusCode?: number;
  path?: string;
  process?: string;
  timeoutMs?: number;
}

/** Fields every step has. */
export interface StepCommon {
  /** the step always runs (`skipCache()`); later steps stay cached when its output is identical */
  skipCache?: boolean;
  /** where the step was added: the caller's file and line (its vertices' location, so errors point there) */
  source?: { file: string; line: number };
}

/** One step of a template, as data. */
export type TemplateStep = StepCommon &
  (
    | { type: 'aptInstall'; packages: string[]; noInstallRecommends: boolean }
    | { type: 'pipInstall'; packages: string[]; requirements?: string }
    | { type: 'npmInstall'; packages: string[]; global: boolean; dev: boolean }
    | { type: 'bunInstall'; packages: string[]; global: boolean; dev: boolean }
    | { type: 'goInstall'; packages: string[] }
    | { type: 'cargoInstall'; packages: string[] }
    | { type: 'runCmd'; commands: string[]; user?: string; caches?: string[] }
    | { type: 'copy'; sources: string[]; dest: string; owner?: string; mode?: string; resolveSymlinks: boolean }
    | { type: 'remove'; paths: string[]; recursive: boolean; force: boolean }
    | { type: 'rename'; src: string; dest: string; force: boolean }
    | { type: 'makeDir'; paths: string[]; mode?: string }
    | { type: 'makeSymlink'; target: string; path: string; force: boolean }
    | { type: 'setEnv'; env: Record<string, string> }
    | { type: 'setWorkdir'; path: string }
    | { type: 'setUser'; user: string }
    | { type: 'gitClone'; url: string; path?: string; branch?: string; depth?: number }
    | { type: 'setStartCmd'; cmd: string | string[]; ready?: ReadyCheck }
    | { type: 'setReadyCmd'; ready: ReadyCheck }
  );

/** Everything a template holds: plain data, the same for the text and the JSON form. */
export interface TemplateData {
  base: TemplateBase;
  steps: TemplateStep[];
  /** folder `copy()` sources resolve against when the build names none: the template file's folder under `kiln build FILE` */
  defaultContext?: string;
}

/** `toJSON()`: the template as data, each step with the Dockerfile instructions it renders to. */
export interface TemplateJSON {
  version: 1;
  base: { type: 'image'; ref: string; private?: true } | { type: 'dockerfile'; content: string };
  steps: Array<TemplateStep & { instructions: string[] }>;
}

/** A log line of a build step. */
export interface BuildLogEntry {
  /** the step's display name, e.g. `[3/7] RUN ... pip install numpy` */
  step: string;
  stream: 'stdout' | 'stderr';
  message: string;
  at: Date;
}

/** A step changed state during a build. */
export interface BuildProgressEvent {
  type: 'start' | 'cached' | 'done' | 'error';
  step: string;
  /** steps finished so far (cached or built) */
  completed: number;
  /** steps in the build */
  total: number;
  durationMs?: number;
  error?: string;
}

/** Options of `Template.build`. Every field also takes `undefined` (so `exactOptionalPropertyTypes` projects can pass `process.env.X`). */
export interface BuildOptions {
  /** tag the image with this name (`my-template` → `my-template:latest`) */
  name?: string | undefined;
  /** more tags */
  tags?: string[] | undefined;
  /** E2B's name for `name` (`Template.build(t, 'alias', options)` sets it too) */
  alias?: string | undefined;
  /** E2B's log callback: every log line and step change, as {@link LogEntry} (see `defaultBuildLogger()`) */
  onBuildLogs?: ((entry: LogEntry) => void) | undefined;
  /** run every step; nothing is looked up in the cache (results are still recorded) */
  skipCache?: boolean | undefined;
  /**
   * Folder `copy()` sources (and `pipInstall({ requirements })`) resolve against. Default: the current working folder
   * (as E2B's `fileContextPath`); for a template loaded by `kiln build template.ts`, that file's folder.
   */
  contextPath?: string | undefined;
  /** more `.dockerignore` patterns for the context */
  ignorePatterns?: string[] | undefined;
  /** every line a step prints */
  onLog?: ((entry: BuildLogEntry) => void) | undefined;
  /** step starts, hits and finishes */
  onProgress?: ((event: BuildProgressEvent) => void) | undefined;
  signal?: AbortSignal | undefined;
  /** kiln's state directory (default `KILN_ROOT`, `/var/lib/kiln` for root) */
  root?: string | undefined;
  /**
   * Environment for the build's RUN steps only: registry and index addresses, proxies. Never stored in the image,
   * in build history or in cache keys (the values reach the steps as secrets), so a mirror change keeps the cache.
   */
  env?: Record<string, string> | undefined;
  /** a CA bundle on this machine that RUN steps trust (for TLS-intercepting networks); mounted, never stored */
  caBundle?: string | undefined;
  /**
   * A registry shared by many machines as the build cache, per step (`kiln build --cache-registry`): a step missing
   * here is taken from `ref`'s repository (the team's namespace) when another machine built it, every step that runs
   * is pushed there, and cache mounts (`/cache/pip`, ...) travel with it unless `mounts: false`. Credentials come from
   * `~/.docker/config.json`; loopback registries are reached over plain HTTP.
   *
   * @example
   * await Template.build(t, { name: 'app', cacheRegistry: { ref: 'registry.internal:5000/acme/cache' } });
   */
  cacheRegistry?: { ref: string; mounts?: boolean } | undefined;
  /**
   * How long the start command has to pass its ready check at the end of the build (default 60 000 ms); a check that
   * does not pass in time fails the build with the command's last output lines.
   */
  readyTimeoutMs?: number | undefined;
  /** CPUs for the sandbox (E2B's `cpuCount`): recorded, and given to the start check's container */
  cpuCount?: number | undefined;
  /** memory for the sandbox in MiB (E2B's `memoryMB`): recorded, and given to the start check's container */
  memoryMB?: number | undefined;
  /** build through a `kiln serve` with this API key (default `KILN_API_KEY`); see README "kiln serve" */
  apiKey?: string | undefined;
  /** the service's address, `http://HOST:PORT` or `unix:/path` (default `KILN_HOST`, else http://127.0.0.1:8080) */
  baseUrl?: string | undefined;
}

/** Where a remote call goes (`Template.exists`, `list`, `delete`, `getBuildStatus`). */
export interface RemoteOptions {
  apiKey?: string;
  baseUrl?: string;
}

/** A build log line in E2B's shape (`onBuildLogs`). */
export interface LogEntry {
  timestamp: Date;
  level: 'debug' | 'info' | 'warn' | 'error';
  message: string;
  toString(): string;
}

/** What `Template.getBuildStatus` answers. */
export interface BuildStatus {
  buildId: string;
  status: 'building' | 'ready' | 'error';
  /** log entries from `logsOffset` on */
  logEntries: LogEntry[];
  /** why the build failed */
  reason?: string;
}

/** One step of a finished build. */
export interface BuildStepInfo {
  name: string;
  cached: boolean;
  durationMs: number;
}

/** What `Template.build` resolves to. */
export interface BuildInfo {
  /** the tag given as `name` (normalized, e.g. `my-template:latest`), or '' */
  name: string;
  /** E2B's fields: the alias (= name), the template id (the image digest) and the build id (kiln history) */
  alias: string;
  templateId: string;
  buildId: string;
  /** manifest digest of the image */
  digest: string;
  durationMs: number;
  steps: BuildStepInfo[];
  /** a build through the service: its id and what was uploaded (0 files, 0 bytes for an unchanged context) */
  remote?: { buildId: string; uploadedFiles?: number; uploadedBytes?: number };
}
