import { langCachePlan } from '../langcache/index.js';
import type { MountDef } from '../graph/index.js';
import {
  makeCmd, makeCopy, makeEnv, makeLabel, makeRun, makeUser, makeWorkdir, quoteWord, renderCommand, type Command, type Location, type RunCommand,
} from '../frontend/dockerfile/instructions/index.js';
import type { TemplateData, TemplateStep } from './types.js';

/** Where a CA bundle given at build time is mounted in RUN steps. */
export const CA_BUNDLE_TARGET = '/run/secrets/kiln-ca-bundle';
/** Secret id of the CA bundle. */
export const CA_BUNDLE_SECRET = 'kiln-ca-bundle';
/** Variables pointing tools at the CA bundle (each read from a secret, like every build-env variable). */
export const CA_BUNDLE_ENV = ['NODE_EXTRA_CA_CERTS', 'PIP_CERT', 'SSL_CERT_FILE'] as const;

/** Secret id carrying the build-env variable `name`. */
export function buildEnvSecretId(name: string): string {
  return `kiln-env-${name}`;
}

/** Options of {@link renderTemplate}. */
export interface RenderOptions {
  /**
   * Names of build-time variables: every RUN step that may reach the network reads them through secret mounts
   * (`--mount=type=secret,id=kiln-env-NAME,env=NAME`), so their values are in no layer, history or cache key.
   */
  buildEnv?: string[];
  /** mount the CA bundle secret at {@link CA_BUNDLE_TARGET} in those RUN steps */
  caBundle?: boolean;
}

/** A template as typed instructions per step, and as Dockerfile text (a rendering of those instructions). */
export interface RenderedTemplate {
  /** the whole template as a Dockerfile (`toDockerfile()`) */
  text: string;
  /** the base alone: the FROM line, or the given Dockerfile */
  base: string;
  /** per step: its instructions as records (located at the caller's file and line), and each rendered as text */
  steps: Array<{ commands: Command[]; instructions: string[] }>;
}

const SAFE_WORD = /^[A-Za-z0-9_@%+=:,./^~-]+$/;

/** Quote a word for /bin/sh when it needs it. */
export function shellQuote(s: string): string {
  if (s !== '' && SAFE_WORD.test(s)) return s;
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

/** A mount definition as a `--mount=` value. */
export function mountSpec(m: MountDef): string {
  const parts = [`type=${m.type}`];
  if (m.id) parts.push(`id=${m.id}`);
  if (m.target) parts.push(`target=${m.target}`);
  if (m.source) parts.push(`source=${m.source}`);
  if (m.sharing) parts.push(`sharing=${m.sharing}`);
  if (m.uid !== undefined) parts.push(`uid=${m.uid}`);
  if (m.gid !== undefined) parts.push(`gid=${m.gid}`);
  if (m.mode !== undefined) parts.push(`mode=0${m.mode.toString(8)}`);
  if (m.env) parts.push(`env=${m.env}`);
  if (m.required) parts.push('required=true');
  return parts.join(',');
}

/** The uid/gid a language cache is owned by: the step's user when it is numeric or root, else the layout default. */
export function cacheOwner(user: string): { uid: number; gid: number } {
  const u = user.trim();
  if (isRoot(u)) return { uid: 0, gid: 0 };
  const m = /^(\d+)(?::(\d+))?$/.exec(u);
  if (m) return { uid: Number(m[1]), gid: Number(m[2] ?? m[1]) };
  return { uid: 1000, gid: 1000 };
}

function isRoot(user: string): boolean {
  return /^(|root|0)(:.*)?$/.test(user.trim());
}

function sameUser(a: string, b: string): boolean {
  return a.trim() === b.trim() || (isRoot(a) && isRoot(b) && !a.includes(':') && !b.includes(':'));
}

/** Cache mounts and env of a language tool for a step running as `user`. */
function langCache(tool: string, user: string): { mounts: string[]; env: string[] } {
  const owner = cacheOwner(user);
  const plan = langCachePlan({ tools: [tool], uid: owner.uid, gid: owner.gid });
  return { mounts: plan.mounts.map(mountSpec), env: Object.entries(plan.env).map(([k, v]) => `${k}=${shellQuote(v)}`) };
}

interface RunParts {
  mounts: string[];
  env: string[];
  script: string;
  network: boolean;
}

class Renderer {
  private readonly out: string[] = [];
  private user = '';
  readonly steps: RenderedTemplate['steps'] = [];
  /** where the step being rendered was added (its records' location) */
  private at: Location | undefined;

  constructor(private readonly opts: RenderOptions) {}

  base(data: TemplateData): void {
    if (data.base.type === 'image') this.out.push(`FROM ${data.base.ref}`);
    else this.out.push(...data.base.content.replace(/\n+$/, '').split('\n'));
  }

  step(s: TemplateStep): void {
    const rec: RenderedTemplate['steps'][number] = { commands: [], instructions: [] };
    const at = s.source ? { file: s.source.file, startLine: s.source.line, endLine: s.source.line } : undefined;
    this.at = at;
    const emit = (cmd: Command): void => {
      const text = renderCommand(cmd);
      rec.commands.push(cmd);
      rec.instructions.push(text);
      this.out.push(text);
    };
    const on = { ...(at ? { at } : {}) };
    const asUser = (user: string | undefined, body: () => void): void => {
      const prev = this.user;
      const switchUser = user !== undefined && !sameUser(user, prev);
      if (switchUser) {
        emit(makeUser({ user, ...on }));
        this.user = user;
      }
      body();
      if (switchUser) {
        emit(makeUser({ user: prev === '' ? 'root' : prev, ...on }));
        this.user = prev;
      }
    };
    switch (s.type) {
      case 'aptInstall':
        asUser('root', () => emit(this.run(aptParts(s.packages, s.noInstallRecommends))));
        break;
      case 'pipInstall': {
        const lc = langCache('pip', this.user);
        const mounts = [...lc.mounts];
        const args = s.packages.map(shellQuote);
        if (s.requirements) {
          const target = `/tmp/kiln-requirements/${s.requirements.replace(/^\.?\/+/, '').replace(/[^A-Za-z0-9_.-]/g, '_')}`;
          mounts.push(mountSpec({ type: 'bind', source: s.requirements, target }));
          args.push('-r', shellQuote(target));
        }
        const env = [...lc.env, 'PIP_DISABLE_PIP_VERSION_CHECK=1', 'PIP_ROOT_USER_ACTION=ignore'];
        emit(this.run({ mounts, env, script: `python3 -m pip install ${args.join(' ')}`, network: true }));
        break;
      }
      case 'npmInstall': {
        const lc = langCache('npm', this.user);
        const flags = [...(s.global ? ['-g'] : []), ...(s.dev ? ['--save-dev'] : []), '--no-audit', '--no-fund'];
        const script = `npm install ${[...flags, ...s.packages.map(shellQuote)].join(' ')}`;
        emit(this.run({ mounts: lc.mounts, env: [...lc.env, 'NPM_CONFIG_UPDATE_NOTIFIER=false'], script, network: true }));
        break;
      }
      case 'bunInstall': {
        // bun's package cache as a cache mount of its own (the /cache layout has no bun entry)
        const owner = cacheOwner(this.user);
        const mounts = [mountSpec({ type: 'cache', id: 'lang-bun', target: '/cache/bun', sharing: 'shared', uid: owner.uid, gid: owner.gid } as MountDef)];
        const verb = s.packages.length === 0 ? 'bun install' : `bun add${s.global ? ' -g' : ''}${s.dev ? ' --dev' : ''}`;
        const script = [verb, ...s.packages.map(shellQuote)].join(' ');
        emit(this.run({ mounts, env: ['BUN_INSTALL_CACHE_DIR=/cache/bun'], script, network: true }));
        break;
      }
      case 'goInstall': {
        const lc = langCache('go', this.user);
        const pkgs = s.packages.map((p) => shellQuote(p.includes('@') ? p : `${p}@latest`));
        emit(this.run({ mounts: lc.mounts, env: lc.env, script: `go install ${pkgs.join(' ')}`, network: true }));
        break;
      }
      case 'cargoInstall': {
        const lc = langCache('cargo', this.user);
        const script = `cargo install --root /usr/local ${s.packages.map(shellQuote).join(' ')}`;
        emit(this.run({ mounts: lc.mounts, env: lc.env, script, network: true }));
        break;
      }
      case 'runCmd':
        asUser(s.user, () => {
          const lc = (s.caches ?? []).map((tool) => langCache(tool, this.user));
          emit(this.run({ mounts: lc.flatMap((c) => c.mounts), env: lc.flatMap((c) => c.env), script: s.commands.join(' && '), network: true }));
        });
        break;
      case 'copy': {
        const dest = s.sources.length > 1 && !s.dest.endsWith('/') ? `${s.dest}/` : s.dest;
        emit(makeCopy({ sources: s.sources, dest, ...(s.owner ? { chown: s.owner } : {}), ...(s.mode ? { chmod: s.mode } : {}), ...on }));
        break;
      }
      case 'remove': {
        const f = `${s.recursive ? 'r' : ''}${s.force ? 'f' : ''}`;
        emit(this.run({ mounts: [], env: [], script: `rm ${f ? `-${f} ` : ''}${s.paths.map(shellQuote).join(' ')}`, network: false }));
        break;
      }
      case 'rename':
        emit(this.run({ mounts: [], env: [], script: `mv ${s.force ? '-f ' : ''}${shellQuote(s.src)} ${shellQuote(s.dest)}`, network: false }));
        break;
      case 'makeDir':
        emit(this.run({ mounts: [], env: [], script: `mkdir -p ${s.mode ? `-m ${s.mode} ` : ''}${s.paths.map(shellQuote).join(' ')}`, network: false }));
        break;
      case 'makeSymlink':
        emit(this.run({ mounts: [], env: [], script: `ln -s${s.force ? 'f' : ''} ${shellQuote(s.target)} ${shellQuote(s.path)}`, network: false }));
        break;
      case 'setEnv':
        emit(makeEnv({ env: Object.entries(s.env).map(([key, v]) => ({ key, value: quoteWord(v, { expand: true }) })), ...on }));
        break;
      case 'setWorkdir':
        emit(makeWorkdir({ path: s.path, ...on }));
        break;
      case 'setUser':
        emit(makeUser({ user: s.user, ...on }));
        this.user = s.user;
        break;
      case 'gitClone': {
        const args = ['git', 'clone', ...(s.branch ? ['--branch', s.branch] : []), ...(s.depth ? ['--depth', String(s.depth)] : []), s.url, ...(s.path ? [s.path] : [])];
        emit(this.run({ mounts: [], env: [], script: args.map(shellQuote).join(' '), network: true }));
        break;
      }
      case 'setStartCmd': {
        const argv = typeof s.cmd === 'string' ? ['/bin/sh', '-c', s.cmd] : s.cmd;
        emit(makeCmd({ exec: argv, ...on }));
        const labels = [{ key: 'kiln.template.start-cmd', value: quoteWord(JSON.stringify(s.cmd), { expand: false }) }];
        if (s.ready) labels.push({ key: 'kiln.template.ready', value: quoteWord(JSON.stringify(s.ready), { expand: false }) });
        emit(makeLabel({ labels, ...on }));
        break;
      }
      case 'setReadyCmd':
        emit(makeLabel({ labels: [{ key: 'kiln.template.ready', value: quoteWord(JSON.stringify(s.ready), { expand: false }) }], ...on }));
        break;
      default: {
        const never: never = s;
        throw new Error(`unknown step ${(never as TemplateStep).type}`);
      }
    }
    this.steps.push(rec);
  }

  /** A RUN instruction: mounts, build-env secrets for network steps, inline env, then the script. */
  private run(p: RunParts): RunCommand {
    const mounts = [...p.mounts];
    if (p.network) {
      for (const name of [...(this.opts.buildEnv ?? [])].sort()) mounts.push(mountSpec({ type: 'secret', target: '', id: buildEnvSecretId(name), env: name, required: true }));
      if (this.opts.caBundle) mounts.push(mountSpec({ type: 'secret', id: CA_BUNDLE_SECRET, target: CA_BUNDLE_TARGET, required: true }));
    }
    const common = { mounts, ...(this.at ? { at: this.at } : {}) };
    const env = p.env.length ? `${p.env.join(' ')} ` : '';
    if (p.script.includes('\n')) {
      // a multi-line script goes in a heredoc, so the Dockerfile stays one instruction per step
      return makeRun({ ...common, heredoc: env ? `set -e\nexport ${p.env.join(' ')}\n${p.script}` : p.script });
    }
    // a prefix reaches one command only: a compound script exports the variables first
    if (env && /[;&|]/.test(p.script)) return makeRun({ ...common, shell: `export ${p.env.join(' ')} && ${p.script}` });
    return makeRun({ ...common, shell: `${env}${p.script}` });
  }

  text(): string {
    return `${this.out.join('\n')}\n`;
  }
}

function aptParts(packages: string[], noRecommends: boolean): RunParts {
  const mounts = [
    mountSpec({ type: 'cache', id: 'apt-cache', target: '/var/cache/apt', sharing: 'locked' }),
    mountSpec({ type: 'cache', id: 'apt-lists', target: '/var/lib/apt/lists', sharing: 'locked' }),
  ];
  const install = ['apt-get', 'install', '-y', ...(noRecommends ? ['--no-install-recommends'] : []), ...packages].map(shellQuote).join(' ');
  return { mounts, env: ['DEBIAN_FRONTEND=noninteractive'], script: `apt-get update && ${install}`, network: true };
}

/**
 * Render a template as Dockerfile text: the base (a FROM line, or the given Dockerfile), then one instruction per
 * step (a few steps need two: `setStartCmd` is CMD + LABEL, and a step run as another user is wrapped in USER lines).
 *
 * @example
 * const { text } = renderTemplate({ base: { type: 'image', ref: 'python:3.12-slim' }, steps: [{ type: 'setWorkdir', path: '/app' }] });
 * // "FROM python:3.12-slim\nWORKDIR /app\n"
 */
export function renderTemplate(data: TemplateData, opts: RenderOptions = {}): RenderedTemplate {
  const r = new Renderer(opts);
  r.base(data);
  const base = r.text();
  for (const s of data.steps) r.step(s);
  return { text: r.text(), base, steps: r.steps };
}
