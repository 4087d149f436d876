import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { BuildError } from '../errors/index.js';
import { selectLangCaches } from '../langcache/index.js';
import { renderTemplate, type RenderOptions } from './render.js';
import { waitForCommand } from './ready.js';
import { logEntry } from './logger.js';
import type { Builder, TemplateBackend } from './builder.js';
import type {
  AptInstallOptions,
  BuildInfo,
  AWSRegistryCredentials,
  BuildOptions,
  BuildStatus,
  BunInstallOptions,
  CopyItem,
  CopyOptions,
  GCPRegistryCredentials,
  ForceOptions,
  GitCloneOptions,
  LogEntry,
  MakeDirOptions,
  NpmInstallOptions,
  PipInstallOptions,
  ReadyCheck,
  RegistryCredentials,
  RemoteOptions,
  RemoveOptions,
  RunCmdOptions,
  TemplateBase,
  TemplateData,
  TemplateJSON,
  TemplateStep,
} from './types.js';

/**
 * Where a template keeps its data. `Symbol.for`, so a template made by another copy of this module (a template file
 * loaded by the CLI through tsx) is still recognised.
 * @internal
 */
export const TEMPLATE_DATA: unique symbol = Symbol.for('kiln.template.data');

/** The base images the `from*Image()` shortcuts use when no version is given. */
export const DEFAULT_BASE_IMAGES = {
  debian: 'debian:bookworm-slim',
  ubuntu: 'ubuntu:24.04',
  python: 'python:3.12-slim',
  node: 'node:22-slim',
  /** E2B's base image (`fromBaseImage`) */
  base: 'e2bdev/base:latest',
} as const;

/**
 * A template that can be built: it has a base image and zero or more steps. What `setStartCmd` returns (no more
 * steps can follow) and what {@link Template.build} accepts.
 */
export interface TemplateFinal {
  /** @internal the template's data */
  readonly [TEMPLATE_DATA]: TemplateData;
  /**
   * Make the previous step always run. Steps after it stay cached when its output (file contents and metadata, not
   * timestamps) is the same as the last run's, and rebuild when it differs.
   *
   * @example
   * Template().fromPythonImage('3.11-slim')
   *   .runCmd('git clone https://github.com/user/repo.git /app').skipCache()
   *   .pipInstall('flask');
   */
  skipCache(): this;
  /**
   * The template as a Dockerfile: a FROM line (or the base Dockerfile), then one instruction per step.
   *
   * @example
   * console.log(Template().fromNodeImage('22-slim').setWorkdir('/app').toDockerfile());
   * // FROM node:22-slim
   * // WORKDIR /app
   */
  toDockerfile(options?: RenderOptions): string;
  /**
   * The template as data: the base and each step with its arguments and the Dockerfile instructions it renders to.
   * Credentials given to `fromImage` are left out.
   *
   * @example
   * const json = Template().fromDebianImage().aptInstall('curl').toJSON();
   * // json.steps[0] → { type: 'aptInstall', packages: ['curl'], noInstallRecommends: false, instructions: ['RUN ...'] }
   */
  toJSON(): TemplateJSON;
  /**
   * Build the template with the embedded engine; the same as `Template.build(this, options)`.
   *
   * @example
   * const info = await Template().fromPythonImage().pipInstall('numpy').build({ name: 'numpy-box' });
   */
  build(options?: BuildOptions): Promise<BuildInfo>;
}

/** A template with a base image: add steps, then build it. Every method returns a new template (immutable). */
export interface Template extends TemplateFinal {
  /**
   * Install Debian/Ubuntu packages with apt-get (as root), through locked cache mounts for apt's downloads and lists,
   * so nothing of apt's cache lands in the image.
   *
   * @example
   * t.aptInstall('curl', 'git');
   * t.aptInstall(['curl', 'git'], { noInstallRecommends: true });
   */
  aptInstall(...packages: string[]): Template;
  aptInstall(...args: [...packages: string[], options: AptInstallOptions]): Template;
  aptInstall(packages: string[], options?: AptInstallOptions): Template;
  /**
   * Install Python packages with pip, downloading through the shared language cache (`/cache/pip`, a cache mount):
   * adding a package to the list downloads only that package.
   *
   * @example
   * t.pipInstall('numpy', 'pandas');
   * t.pipInstall(['numpy', 'pandas']);
   * t.pipInstall({ requirements: 'requirements.txt' });
   */
  pipInstall(...packages: string[]): Template;
  pipInstall(packages: string[]): Template;
  pipInstall(options: PipInstallOptions): Template;
  /**
   * Install npm packages (in the working folder, or globally), through the shared npm cache (`/cache/npm`). With no
   * packages, installs what package.json in the working folder lists.
   *
   * @example
   * t.setWorkdir('/app').npmInstall('express', 'zod');
   * t.npmInstall('typescript', { global: true });
   * t.npmInstall(['vitest'], { dev: true });
   */
  npmInstall(...packages: string[]): Template;
  npmInstall(...args: [...packages: string[], options: NpmInstallOptions]): Template;
  npmInstall(packages: string[], options?: NpmInstallOptions): Template;
  /**
   * Install packages with bun (`bun add`; with none, `bun install` of the working folder's package.json), through a
   * cache mount for bun's package cache.
   *
   * @example
   * t.setWorkdir('/app').bunInstall('hono');
   * t.bunInstall(['typescript'], { dev: true });
   */
  bunInstall(...packages: string[]): Template;
  bunInstall(...args: [...packages: string[], options: BunInstallOptions]): Template;
  bunInstall(packages: string[], options?: BunInstallOptions): Template;
  /**
   * Several copies, each with its own options (E2B's `copyItems`).
   *
   * @example
   * t.copyItems([{ src: 'app/', dest: '/app/' }, { src: 'run.sh', dest: '/usr/local/bin/', mode: 0o755 }]);
   */
  copyItems(items: CopyItem[]): Template;
  /**
   * `go install` programs (a version defaults to `@latest`), with the Go module and build caches mounted.
   *
   * @example
   * t.goInstall('golang.org/x/tools/gopls@v0.16.2');
   */
  goInstall(...packages: string[]): Template;
  goInstall(packages: string[]): Template;
  /**
   * `cargo install` crates into /usr/local/bin, with cargo's registry and git caches mounted.
   *
   * @example
   * t.cargoInstall('ripgrep');
   */
  cargoInstall(...crates: string[]): Template;
  cargoInstall(crates: string[]): Template;
  /**
   * Run a shell command; an array runs each command in turn (joined with `&&`).
   *
   * @example
   * t.runCmd('echo hello > /hello.txt');
   * t.runCmd(['mkdir -p /data', 'chown user /data'], { user: 'root' });
   * t.runCmd('poetry install --no-root', { caches: ['poetry'] });
   */
  runCmd(command: string | string[], options?: RunCmdOptions): Template;
  /**
   * Copy files or folders from the build context (`contextPath`; by default the working folder, or the template
   * file's folder under `kiln build template.ts`) into the
   * image. Cached by the content and mode of exactly the files copied, never by their timestamps.
   *
   * @example
   * t.copy('app/', '/app/');
   * t.copy(['main.py', 'util.py'], '/app/', { owner: 'user:user', mode: 0o644 });
   */
  copy(src: string | string[], dest: string, options?: CopyOptions): Template;
  /**
   * Remove files or folders (`rm -rf` by default).
   *
   * @example
   * t.remove('/tmp/build');
   * t.remove(['/a', '/b'], { recursive: false });
   */
  remove(path: string | string[], options?: RemoveOptions): Template;
  /**
   * Rename (move) a file or folder.
   *
   * @example
   * t.rename('/app/config.example.json', '/app/config.json');
   */
  rename(src: string, dest: string, options?: ForceOptions): Template;
  /**
   * Create folders and their parents.
   *
   * @example
   * t.makeDir(['/data', '/logs'], { mode: 0o750 });
   */
  makeDir(path: string | string[], options?: MakeDirOptions): Template;
  /**
   * Create a symbolic link at `path` pointing to `target`.
   *
   * @example
   * t.makeSymlink('/usr/bin/python3', '/usr/local/bin/python');
   */
  makeSymlink(target: string, path: string, options?: ForceOptions): Template;
  /**
   * Set an environment variable in the image (and for later steps). As in a Dockerfile's ENV, `$NAME` and `${NAME}`
   * refer to variables set before.
   *
   * @example
   * t.setEnv('DEBUG', 'true');
   * t.setEnv('PATH', '/opt/tools/bin:$PATH');
   */
  setEnv(key: string, value: string): Template;
  /**
   * Set several environment variables in one step.
   *
   * @example
   * t.setEnvs({ NODE_ENV: 'production', PORT: '3000' });
   */
  setEnvs(env: Record<string, string>): Template;
  /**
   * Set the working folder for later steps and for the start command (created when missing).
   *
   * @example
   * t.setWorkdir('/app');
   */
  setWorkdir(path: string): Template;
  /**
   * Run later steps and the start command as this user (`name`, `uid` or `uid:gid`).
   *
   * @example
   * t.setUser('user');
   */
  setUser(user: string): Template;
  /**
   * Clone a git repository (needs git in the image). Usually paired with `skipCache()` to get the latest commit.
   *
   * @example
   * t.gitClone('https://github.com/user/repo.git', '/app', { branch: 'main', depth: 1 }).skipCache();
   */
  gitClone(url: string, path?: string, options?: GitCloneOptions): Template;
  /**
   * The command a sandbox runs at start, and how to tell it is ready. Recorded in the image config (Cmd) and in the
   * labels `kiln.template.start-cmd` and `kiln.template.ready`. No steps can follow.
   *
   * @example
   * t.setStartCmd('node server.js', waitForPort(3000));
   * t.setStartCmd(['python3', '-m', 'http.server', '8000'], waitForURL('http://localhost:8000/'));
   */
  setStartCmd(command: string | string[], ready?: ReadyCheck | string): TemplateFinal;
  /**
   * How to tell the sandbox is ready when the start command comes from the base image (or to replace the check given
   * to `setStartCmd`): a ready check or a shell command that exits 0 once ready. Proven at the end of the build.
   *
   * @example
   * Template().fromImage('my-server:1').setReadyCmd(waitForPort(8080));
   */
  setReadyCmd(ready: ReadyCheck | string): TemplateFinal;
}

/** A template with no base yet: pick one. Only a template with a base can be built. */
export interface EmptyTemplate {
  /**
   * Start from an image in kiln's image store (`kiln images`), by name or digest.
   *
   * @example
   * Template().fromImage('ghcr.io/acme/base:1.2');
   * Template().fromImage('registry.example.com/private/base:1', { username: 'me', password: process.env.TOKEN! });
   */
  fromImage(ref: string, credentials?: RegistryCredentials): Template;
  /**
   * Start from E2B's base image (`e2bdev/base`), as E2B's `fromBaseImage` does.
   *
   * @example
   * Template().fromBaseImage().aptInstall('curl');
   */
  fromBaseImage(): Template;
  /**
   * Start from Bun (`oven/bun:<version>`, default `latest`).
   *
   * @example
   * Template().fromBunImage('1.2');
   */
  fromBunImage(version?: string): Template;
  /**
   * Start from an image in AWS ECR. Recorded; building it needs the image pulled (or a `kiln login` to the ECR host)
   * first: kiln does not call AWS's token API, and says so.
   *
   * @example
   * Template().fromAWSRegistry('123456789012.dkr.ecr.us-west-1.amazonaws.com/app:1', { accessKeyId, secretAccessKey, region: 'us-west-1' });
   */
  fromAWSRegistry(ref: string, credentials: AWSRegistryCredentials): Template;
  /**
   * Start from an image in GCP Artifact Registry, pulled with a service-account key (user `_json_key`).
   *
   * @example
   * Template().fromGCPRegistry('us-docker.pkg.dev/proj/repo/app:1', { serviceAccountJSON: './sa.json' });
   */
  fromGCPRegistry(ref: string, credentials: GCPRegistryCredentials): Template;
  /**
   * Start from Debian (`debian:<version>`, default `bookworm-slim`).
   *
   * @example
   * Template().fromDebianImage('bookworm');
   */
  fromDebianImage(version?: string): Template;
  /**
   * Start from Ubuntu (`ubuntu:<version>`, default `24.04`).
   *
   * @example
   * Template().fromUbuntuImage('22.04');
   */
  fromUbuntuImage(version?: string): Template;
  /**
   * Start from Python (`python:<version>`, default `3.12-slim`).
   *
   * @example
   * Template().fromPythonImage('3.11-slim'); // python:3.11-slim
   */
  fromPythonImage(version?: string): Template;
  /**
   * Start from Node.js (`node:<version>`, default `22-slim`).
   *
   * @example
   * Template().fromNodeImage('20-slim');
   */
  fromNodeImage(version?: string): Template;
  /**
   * Start from a Dockerfile (multi-stage allowed): the template's steps continue its last stage. A string holding a
   * newline or starting with an instruction is the Dockerfile itself; anything else is a path (relative to the
   * working folder, or to the template file's folder under `kiln build template.ts`).
   *
   * @example
   * Template().fromDockerfile('docker/base.Dockerfile');
   * Template().fromDockerfile('FROM python:3.12-slim AS base\nRUN useradd -m user\n');
   */
  fromDockerfile(pathOrContent: string): Template;
  /**
   * Start where another template ends: its base and all its steps (so both share their cache).
   *
   * @example
   * const base = Template().fromPythonImage().pipInstall('numpy');
   * const ml = Template().fromTemplate(base).pipInstall('scikit-learn');
   */
  fromTemplate(other: TemplateFinal): Template;
}

/** `Template()` / `new Template()` and the static `Template.build`. */
export interface TemplateConstructor {
  /**
   * A new, empty template; pick a base next. Given an image reference, a template already based on it.
   *
   * @example
   * const t = Template().fromPythonImage('3.11-slim').pipInstall('numpy', 'pandas');
   * const u = new Template().fromNodeImage();
   */
  (): EmptyTemplate;
  (baseImage: string): Template;
  new (): EmptyTemplate;
  new (baseImage: string): Template;
  /**
   * Build a template with the embedded engine: each step is cached; the image is stored (and tagged `name`) in
   * kiln's state directory.
   *
   * @example
   * const info = await Template.build(t, { name: 'data-science', onLog: (l) => process.stdout.write(l.message) });
   * console.log(info.digest, info.steps.filter((s) => s.cached).length);
   */
  build(template: TemplateFinal, options?: BuildOptions): Promise<BuildInfo>;
  /** E2B's form: the alias (the image name) second. */
  build(template: TemplateFinal, alias: string, options?: BuildOptions): Promise<BuildInfo>;
  /**
   * Start a build and return at once (E2B's `buildInBackground`); follow it with {@link getBuildStatus}. Without a
   * build service the build runs in this process, so this process must stay alive until it ends.
   *
   * @example
   * const info = await Template.buildInBackground(t, 'my-template');
   * while ((await Template.getBuildStatus(info)).status === 'building') await new Promise((r) => setTimeout(r, 500));
   */
  buildInBackground(template: TemplateFinal, alias?: string | BuildOptions, options?: BuildOptions): Promise<BuildInfo>;
  /**
   * The state of a build started with `buildInBackground`: `building`, `ready` or `error`, and its log entries from
   * `logsOffset` on.
   */
  getBuildStatus(build: Pick<BuildInfo, 'buildId'>, options?: { logsOffset?: number } & RemoteOptions): Promise<BuildStatus>;
  /**
   * Is there a template (image) of this name? Through the service when a key/host is given or set, else locally.
   *
   * @example
   * if (!(await Template.exists('my-template'))) await Template.build(t, 'my-template');
   */
  exists(name: string, options?: RemoteOptions & { root?: string }): Promise<boolean>;
  /**
   * The templates (names and tags) of the team (service) or of the local image store.
   *
   * @example
   * for (const t of await Template.list({ apiKey })) console.log(t.name, t.tags.map((x) => x.tag));
   */
  list(options?: RemoteOptions & { root?: string }): Promise<Array<{ name: string; tags: Array<{ tag: string; digest: string }> }>>;
  /**
   * Delete a template (`NAME`: every tag, `NAME:TAG`: one); false when there was none.
   *
   * @example
   * await Template.delete('app', { apiKey });
   */
  delete(name: string, options?: RemoteOptions & { root?: string }): Promise<boolean>;
}

function invalid(message: string): BuildError {
  return new BuildError('ERR_KILN_TEMPLATE_INVALID', message);
}

function deepFreeze<T>(o: T): T {
  if (o && typeof o === 'object' && !Object.isFrozen(o)) {
    Object.freeze(o);
    for (const v of Object.values(o as Record<string, unknown>)) deepFreeze(v);
  }
  return o;
}

/** Split `(...strings, options?)` / `(strings[], options?)` arguments. */
function packageArgs<O extends object>(method: string, args: unknown[], { allowEmpty = false } = {}): { packages: string[]; options: O | undefined } {
  let list = [...args];
  let options: O | undefined;
  const last = list[list.length - 1];
  if (list.length > 0 && last !== null && typeof last === 'object' && !Array.isArray(last)) {
    options = last as O;
    list = list.slice(0, -1);
  }
  if (list.length === 1 && Array.isArray(list[0])) list = [...(list[0] as unknown[])];
  for (const p of list) {
    if (typeof p !== 'string' || p.trim() === '') throw invalid(`${method}: package names must be non-empty strings, got ${JSON.stringify(p)}`);
  }
  if (list.length === 0 && !allowEmpty) throw invalid(`${method}: name at least one package`);
  return { packages: list as string[], options };
}

function toList(method: string, v: string | string[]): string[] {
  const list = Array.isArray(v) ? [...v] : [v];
  if (list.length === 0) throw invalid(`${method}: give at least one path or command`);
  for (const x of list) if (typeof x !== 'string' || x === '') throw invalid(`${method}: expected non-empty strings, got ${JSON.stringify(x)}`);
  return list;
}

function modeString(method: string, m: number | string | undefined): string | undefined {
  if (m === undefined) return undefined;
  const s = typeof m === 'number' ? m.toString(8) : m.replace(/^0o/, '');
  if (!/^[0-7]{3,4}$/.test(s)) throw invalid(`${method}: mode must be octal permission bits such as 0o755, got ${JSON.stringify(m)}`);
  return s.length === 3 ? `0${s}` : s;
}

const ENV_KEY = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** The single implementation behind Template, TemplateFinal (the type narrows what callers see). */
class TemplateImpl {
  readonly [TEMPLATE_DATA]: TemplateData;
  /** what builds it (none: the SDK part's own Template, which only describes) */
  readonly #builder: Builder | undefined;

  constructor(data: TemplateData, builder: Builder | undefined) {
    this[TEMPLATE_DATA] = deepFreeze(data);
    this.#builder = builder;
    Object.freeze(this);
  }

  private add(step: TemplateStep): TemplateImpl {
    const d = this[TEMPLATE_DATA];
    const source = callerSite();
    return new TemplateImpl({ ...d, steps: [...d.steps, source ? { ...step, source } : step] }, this.#builder);
  }

  skipCache(): this {
    const d = this[TEMPLATE_DATA];
    const last = d.steps[d.steps.length - 1];
    if (!last) throw invalid('skipCache() marks the step before it, and this template has no steps yet');
    return new TemplateImpl({ ...d, steps: [...d.steps.slice(0, -1), { ...last, skipCache: true }] }, this.#builder) as unknown as this;
  }

  toDockerfile(options?: RenderOptions): string {
    return renderTemplate(this[TEMPLATE_DATA], options).text;
  }

  toJSON(): TemplateJSON {
    return templateJSON(this[TEMPLATE_DATA]);
  }

  build(options?: BuildOptions): Promise<BuildInfo> {
    return buildTemplate(this.#builder, this as unknown as TemplateFinal, options);
  }

  aptInstall(...args: unknown[]): TemplateImpl {
    const { packages, options } = packageArgs<AptInstallOptions>('aptInstall', args);
    return this.add({ type: 'aptInstall', packages, noInstallRecommends: options?.noInstallRecommends === true });
  }

  pipInstall(...args: unknown[]): TemplateImpl {
    if (args.length === 1 && args[0] && typeof args[0] === 'object' && !Array.isArray(args[0])) {
      const o = args[0] as PipInstallOptions;
      if (typeof o.requirements !== 'string' || o.requirements === '') throw invalid('pipInstall: { requirements } must name a file in the build context');
      if (path.isAbsolute(o.requirements) || o.requirements.split(/[\\/]/).includes('..')) {
        throw invalid(`pipInstall: requirements "${o.requirements}" must be a path inside the build context`);
      }
      const extra = o.packages ? packageArgs<object>('pipInstall', [o.packages]).packages : [];
      return this.add({ type: 'pipInstall', packages: extra, requirements: o.requirements });
    }
    const { packages, options } = packageArgs<object>('pipInstall', args);
    if (options) throw invalid('pipInstall: give packages, or one options object { requirements }');
    return this.add({ type: 'pipInstall', packages });
  }

  npmInstall(...args: unknown[]): TemplateImpl {
    const { packages, options } = packageArgs<NpmInstallOptions>('npmInstall', args, { allowEmpty: true });
    return this.add({ type: 'npmInstall', packages, global: options?.global === true, dev: options?.dev === true });
  }

  bunInstall(...args: unknown[]): TemplateImpl {
    const { packages, options } = packageArgs<BunInstallOptions>('bunInstall', args, { allowEmpty: true });
    return this.add({ type: 'bunInstall', packages, global: options?.global === true, dev: options?.dev === true });
  }

  copyItems(items: CopyItem[]): TemplateImpl {
    if (!Array.isArray(items) || items.length === 0) throw invalid('copyItems: give at least one { src, dest }');
    let t: TemplateImpl = this;
    for (const it of items) {
      const { src, dest, ...options } = it;
      t = t.copy(src, dest, options);
    }
    return t;
  }

  goInstall(...args: unknown[]): TemplateImpl {
    return this.add({ type: 'goInstall', packages: packageArgs<object>('goInstall', args).packages });
  }

  cargoInstall(...args: unknown[]): TemplateImpl {
    return this.add({ type: 'cargoInstall', packages: packageArgs<object>('cargoInstall', args).packages });
  }

  runCmd(command: string | string[], options?: RunCmdOptions): TemplateImpl {
    const commands = toList('runCmd', command);
    const caches = options?.caches ?? [];
    try {
      if (caches.length) selectLangCaches(caches);
    } catch (cause) {
      throw new BuildError('ERR_KILN_TEMPLATE_INVALID', `runCmd: ${(cause as Error).message}`, { cause });
    }
    return this.add({ type: 'runCmd', commands, ...(options?.user ? { user: options.user } : {}), ...(caches.length ? { caches: [...caches] } : {}) });
  }

  copy(src: string | string[], dest: string, options: CopyOptions = {}): TemplateImpl {
    const sources = toList('copy', src);
    if (typeof dest !== 'string' || dest === '') throw invalid('copy: give a destination path');
    for (const s of sources) if (path.isAbsolute(s) || s.split(/[\\/]/).includes('..')) throw invalid(`copy: source "${s}" must be a path inside the build context`);
    const mode = modeString('copy', options.mode);
    return this.add({
      type: 'copy',
      sources,
      dest,
      ...(options.owner ? { owner: options.owner } : {}),
      ...(mode ? { mode } : {}),
      resolveSymlinks: options.resolveSymlinks === true,
    });
  }

  remove(p: string | string[], options: RemoveOptions = {}): TemplateImpl {
    return this.add({ type: 'remove', paths: toList('remove', p), recursive: options.recursive !== false, force: options.force !== false });
  }

  rename(src: string, dest: string, options: ForceOptions = {}): TemplateImpl {
    if (!src || !dest) throw invalid('rename: give a source and a destination');
    return this.add({ type: 'rename', src, dest, force: options.force === true });
  }

  makeDir(p: string | string[], options: MakeDirOptions = {}): TemplateImpl {
    const mode = modeString('makeDir', options.mode);
    return this.add({ type: 'makeDir', paths: toList('makeDir', p), ...(mode ? { mode } : {}) });
  }

  makeSymlink(target: string, linkPath: string, options: ForceOptions = {}): TemplateImpl {
    if (!target || !linkPath) throw invalid('makeSymlink: give a target and a link path');
    return this.add({ type: 'makeSymlink', target, path: linkPath, force: options.force === true });
  }

  setEnv(key: string, value: string): TemplateImpl {
    return this.setEnvs({ [key]: value });
  }

  setEnvs(env: Record<string, string>): TemplateImpl {
    const entries = Object.entries(env ?? {});
    if (entries.length === 0) throw invalid('setEnvs: give at least one variable');
    for (const [k, v] of entries) {
      if (!ENV_KEY.test(k)) throw invalid(`setEnv: "${k}" is not a valid variable name`);
      if (typeof v !== 'string') throw invalid(`setEnv: the value of ${k} must be a string`);
    }
    return this.add({ type: 'setEnv', env: Object.fromEntries(entries) });
  }

  setWorkdir(p: string): TemplateImpl {
    if (!p) throw invalid('setWorkdir: give a path');
    return this.add({ type: 'setWorkdir', path: p });
  }

  setUser(user: string): TemplateImpl {
    if (!user || /\s/.test(user)) throw invalid(`setUser: "${user}" is not a user name or uid[:gid]`);
    return this.add({ type: 'setUser', user });
  }

  gitClone(url: string, p?: string, options: GitCloneOptions = {}): TemplateImpl {
    if (!url) throw invalid('gitClone: give a repository URL');
    if (options.depth !== undefined && !(Number.isInteger(options.depth) && options.depth > 0)) throw invalid('gitClone: depth must be a positive integer');
    return this.add({
      type: 'gitClone',
      url,
      ...(p ? { path: p } : {}),
      ...(options.branch ? { branch: options.branch } : {}),
      ...(options.depth ? { depth: options.depth } : {}),
    });
  }

  setStartCmd(command: string | string[], ready?: ReadyCheck | string): TemplateImpl {
    if (Array.isArray(command) ? command.length === 0 : !command) throw invalid('setStartCmd: give a command');
    const r = typeof ready === 'string' ? waitForCommand(ready) : ready;
    return this.add({ type: 'setStartCmd', cmd: Array.isArray(command) ? [...command] : command, ...(r ? { ready: { ...r } } : {}) });
  }

  setReadyCmd(ready: ReadyCheck | string): TemplateImpl {
    const r = typeof ready === 'string' ? waitForCommand(ready) : ready;
    if (!r || typeof r.cmd !== 'string') throw invalid('setReadyCmd: give a ready check (waitForPort(...), ...) or a shell command');
    return this.add({ type: 'setReadyCmd', ready: { ...r } });
  }
}

/** A template before its base. */
class EmptyTemplateImpl implements EmptyTemplate {
  readonly #builder: Builder | undefined;

  constructor(private readonly defaultContext: string | undefined, builder: Builder | undefined) {
    this.#builder = builder;
    Object.freeze(this);
  }

  private start(base: TemplateBase, steps: TemplateStep[] = []): Template {
    return new TemplateImpl({ base, steps, ...(this.defaultContext ? { defaultContext: this.defaultContext } : {}) }, this.#builder) as unknown as Template;
  }

  fromImage(ref: string, credentials?: RegistryCredentials): Template {
    if (typeof ref !== 'string' || ref.trim() === '' || /\s/.test(ref.trim())) throw invalid(`fromImage: "${ref}" is not an image reference`);
    return this.start({ type: 'image', ref: ref.trim(), ...(credentials ? { credentials: { ...credentials } } : {}) });
  }

  fromBaseImage(): Template {
    return this.fromImage(DEFAULT_BASE_IMAGES.base);
  }

  fromBunImage(version?: string): Template {
    return this.fromImage(`oven/bun:${version ?? 'latest'}`);
  }

  fromAWSRegistry(ref: string, credentials: AWSRegistryCredentials): Template {
    if (!credentials?.accessKeyId || !credentials.secretAccessKey || !credentials.region) throw invalid('fromAWSRegistry: give { accessKeyId, secretAccessKey, region }');
    const t = this.fromImage(ref) as unknown as TemplateImpl;
    const d = t[TEMPLATE_DATA];
    return new TemplateImpl({ ...d, base: { ...(d.base as { type: 'image'; ref: string }), aws: { ...credentials } } }, this.#builder) as unknown as Template;
  }

  fromGCPRegistry(ref: string, credentials: GCPRegistryCredentials): Template {
    const sa = credentials?.serviceAccountJSON;
    let json: string;
    if (typeof sa === 'string') {
      const file = path.resolve(this.defaultContext ?? process.cwd(), sa);
      try {
        json = readFileSync(file, 'utf8');
      } catch (cause) {
        throw new BuildError('ERR_KILN_TEMPLATE_INVALID', `fromGCPRegistry: cannot read the service-account key "${file}"`, { cause });
      }
    } else if (sa && typeof sa === 'object') json = JSON.stringify(sa);
    else throw invalid('fromGCPRegistry: give { serviceAccountJSON } (a file path or the key object)');
    return this.fromImage(ref, { username: '_json_key', password: json });
  }

  fromDebianImage(version?: string): Template {
    return this.fromImage(version ? `debian:${version}` : DEFAULT_BASE_IMAGES.debian);
  }

  fromUbuntuImage(version?: string): Template {
    return this.fromImage(version ? `ubuntu:${version}` : DEFAULT_BASE_IMAGES.ubuntu);
  }

  fromPythonImage(version?: string): Template {
    return this.fromImage(version ? `python:${version}` : DEFAULT_BASE_IMAGES.python);
  }

  fromNodeImage(version?: string): Template {
    return this.fromImage(version ? `node:${version}` : DEFAULT_BASE_IMAGES.node);
  }

  fromDockerfile(pathOrContent: string): Template {
    if (typeof pathOrContent !== 'string' || pathOrContent.trim() === '') throw invalid('fromDockerfile: give a path or the Dockerfile text');
    const isText = pathOrContent.includes('\n') || /^\s*(FROM|ARG|#)\b/i.test(pathOrContent) || /^\s*#/.test(pathOrContent);
    let content = pathOrContent;
    if (!isText) {
      const file = path.resolve(this.defaultContext ?? process.cwd(), pathOrContent);
      try {
        content = readFileSync(file, 'utf8');
      } catch (cause) {
        throw new BuildError('ERR_KILN_TEMPLATE_INVALID', `fromDockerfile: cannot read "${file}"`, { cause });
      }
    }
    if (!/^\s*FROM\s/im.test(content)) throw invalid('fromDockerfile: the Dockerfile has no FROM instruction');
    return this.start({ type: 'dockerfile', content });
  }

  fromTemplate(other: TemplateFinal): Template {
    const d = other?.[TEMPLATE_DATA];
    if (!d) throw invalid('fromTemplate: expected a template with a base image');
    return this.start(d.base, [...d.steps]);
  }
}

/** This module's own file: frames in it are the SDK's, not the caller's. */
const SDK_FILE = fileURLToPath(import.meta.url);

/** The file and line that called into the SDK (the template file), from the stack; undefined when none is found. */
export function callerSite(): { file: string; line: number } | undefined {
  const lines = (new Error().stack ?? '').split('\n').slice(1);
  for (const l of lines) {
    const m = /\(?((?:file:\/\/)?\/[^():]+):(\d+):\d+\)?$/.exec(l.trim());
    if (!m) continue;
    const file = m[1]!.startsWith('file://') ? fileURLToPath(m[1]!) : m[1]!;
    if (file === SDK_FILE || file.includes(`${path.sep}node_modules${path.sep}`)) continue;
    return { file, line: Number(m[2]) };
  }
  return undefined;
}

/** The template as data (credentials and call sites left out). */
export function templateJSON(data: TemplateData): TemplateJSON {
  const rendered = renderTemplate(data);
  const base: TemplateJSON['base'] =
    data.base.type === 'image' ? { type: 'image', ref: data.base.ref, ...(data.base.credentials ? { private: true as const } : {}) } : { type: 'dockerfile', content: data.base.content };
  return {
    version: 1,
    base,
    steps: data.steps.map(({ source: _source, ...s }, i) => ({ ...structuredClone(s), instructions: rendered.steps[i]!.instructions })),
  };
}

/** Is this a template with a base (from this or another copy of the SDK)? */
export function isTemplate(v: unknown): v is TemplateFinal {
  if (v === null || (typeof v !== 'object' && typeof v !== 'function')) return false;
  const d = (v as Record<symbol, unknown>)[TEMPLATE_DATA] as TemplateData | undefined;
  return !!d && typeof d === 'object' && !!d.base && Array.isArray(d.steps);
}

/** `(alias, options)` or `(options)` → options with `name` set from the alias. */
function buildArgs(aliasOrOptions: string | BuildOptions | undefined, options: BuildOptions | undefined): BuildOptions {
  if (typeof aliasOrOptions === 'string') {
    if (aliasOrOptions.trim() === '') throw invalid('Template.build: the alias must not be empty');
    return { ...(options ?? {}), name: aliasOrOptions };
  }
  return aliasOrOptions ?? options ?? {};
}

/** The backend of one call; a template without a builder (the SDK part's own `Template`) describes, never builds. */
function backendOf(builder: Builder | undefined, what: string, o: RemoteOptions & { root?: string }): Promise<TemplateBackend> {
  if (!builder) throw new Error(`${what}: this Template only describes templates; build with the package's Template (src/api, the package entry)`);
  return builder.backend(o);
}

/** Template.build: the builder loads the engine (or the client) only when a build is asked for, so rendering stays light. */
async function buildTemplate(builder: Builder | undefined, template: TemplateFinal, aliasOrOptions?: string | BuildOptions, maybeOptions?: BuildOptions): Promise<BuildInfo> {
  const options = buildArgs(aliasOrOptions, maybeOptions);
  if (!isTemplate(template)) {
    throw new BuildError('ERR_KILN_TEMPLATE_INVALID', 'Template.build needs a template with a base image (Template().fromImage(...) or another from* method)');
  }
  const backend = await backendOf(builder, 'Template.build', options);
  return backend.build(template[TEMPLATE_DATA], options);
}

/**
 * Set by `kiln build FILE` (and `kiln template`) while it loads a template file: templates made then take the file's
 * folder as their default context. A global symbol, so every copy of the SDK reads the same value.
 */
const LOADING_DIR = Symbol.for('kiln.template.loading-dir');

function createTemplate(builder: Builder | undefined, baseImage?: string): EmptyTemplate | Template {
  const loading = (globalThis as Record<symbol, unknown>)[LOADING_DIR];
  const empty = new EmptyTemplateImpl(typeof loading === 'string' ? loading : undefined, builder);
  return baseImage === undefined ? empty : empty.fromImage(baseImage);
}

/**
 * The SDK part's template builder: `Template()` or `new Template()` gives an empty template; pick a base with a
 * `from*` method, add steps, render or hand it to the engine. It has no builder: the package's public `Template`
 * (src/api, `import { Template } from 'kiln'`) is this with one, so `Template.build(t)` works there.
 *
 * @example
 * import { Template, waitForPort } from 'kiln';
 *
 * export default Template()
 *   .fromPythonImage('3.11-slim')
 *   .aptInstall('curl', 'git')
 *   .pipInstall('numpy', 'pandas')
 *   .setEnv('DEBUG', 'true')
 *   .copy('app/', '/app/')
 *   .setStartCmd('python3 -m http.server 8000', waitForPort(8000));
 */
export const Template: TemplateConstructor = templateConstructor();

/**
 * The `Template` constructor whose templates build with `builder` (its static methods and each template's `build`).
 * The package entry (src/api) makes the public `Template` with the engine and the service client; without a builder
 * templates only describe (render, toJSON, the steps the engine takes).
 *
 * @example
 * const Template = templateConstructor({ backend: async () => backend });
 * @internal
 */
export function templateConstructor(builder?: Builder): TemplateConstructor {
  return Object.assign(
    function Template(baseImage?: string): EmptyTemplate | Template {
      return createTemplate(builder, baseImage);
    },
    {
      build: (t: TemplateFinal, a?: string | BuildOptions, o?: BuildOptions) => buildTemplate(builder, t, a, o),
      buildInBackground: (t: TemplateFinal, a?: string | BuildOptions, o?: BuildOptions) => buildInBackground(builder, t, a, o),
      getBuildStatus: (b: Pick<BuildInfo, 'buildId'>, o?: { logsOffset?: number } & RemoteOptions) => getBuildStatus(builder, b, o),
      exists: (name: string, o?: RemoteOptions & { root?: string }) => templateExists(builder, name, o),
      list: async (o: RemoteOptions & { root?: string } = {}) => (await backendOf(builder, 'Template.list', o)).list(),
      delete: async (name: string, o: RemoteOptions & { root?: string } = {}) => (await backendOf(builder, 'Template.delete', o)).delete(name),
    },
  ) as unknown as TemplateConstructor;
}

/** Builds started by buildInBackground in this process, by build id. */
const background = new Map<string, { status: BuildStatus['status']; logs: LogEntry[]; reason?: string }>();

async function buildInBackground(builder: Builder | undefined, template: TemplateFinal, aliasOrOptions?: string | BuildOptions, maybeOptions?: BuildOptions): Promise<BuildInfo> {
  const options = buildArgs(aliasOrOptions, maybeOptions);
  if (!isTemplate(template)) throw invalid('Template.buildInBackground needs a template with a base image');
  const backend = await backendOf(builder, 'Template.buildInBackground', options);
  if (backend.start) return backend.start(template[TEMPLATE_DATA], options);
  const buildId = `local-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}`;
  const entry: { status: BuildStatus['status']; logs: LogEntry[]; reason?: string } = { status: 'building', logs: [] };
  background.set(buildId, entry);
  const user = options.onBuildLogs;
  backend.build(template[TEMPLATE_DATA], { ...options, onBuildLogs: (l) => { entry.logs.push(l); user?.(l); } }).then(
    (info) => {
      entry.status = 'ready';
      entry.logs.push(logEntry('info', `built ${info.name || info.digest} (${info.digest})`));
    },
    (err: unknown) => {
      entry.status = 'error';
      entry.reason = err instanceof Error ? err.message : String(err);
      entry.logs.push(logEntry('error', entry.reason));
    },
  );
  const name = options.name ?? '';
  return { name, alias: name, templateId: '', buildId, digest: '', durationMs: 0, steps: [] };
}

async function getBuildStatus(builder: Builder | undefined, build: Pick<BuildInfo, 'buildId'>, options: { logsOffset?: number } & RemoteOptions = {}): Promise<BuildStatus> {
  const backend = builder ? await builder.backend(options) : undefined;
  if (backend?.status) return backend.status(build.buildId);
  const entry = background.get(build?.buildId);
  if (!entry) throw new BuildError('ERR_KILN_ARGUMENT', `no build "${build?.buildId}" was started by buildInBackground in this process`);
  return { buildId: build.buildId, status: entry.status, logEntries: entry.logs.slice(options.logsOffset ?? 0), ...(entry.reason ? { reason: entry.reason } : {}) };
}

async function templateExists(builder: Builder | undefined, name: string, options: RemoteOptions & { root?: string } = {}): Promise<boolean> {
  if (typeof name !== 'string' || name.trim() === '') throw invalid('Template.exists: give a name');
  return (await backendOf(builder, 'Template.exists', options)).exists(name);
}
