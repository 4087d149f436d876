import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { BuildError } from '../errors/index.js';
import { DEFAULT_BASE_IMAGES, renderTemplate, type RenderOptions, type TemplateData, type TemplateStep } from '../sdk/index.js';

/** The app kinds the planner knows, by the manifest that marks them. */
export type AppLanguage = 'python' | 'node' | 'go' | 'rust';

/** Base images the planner picks per language when none is given. */
export const PLANNER_BASE_IMAGES: Record<AppLanguage, string> = {
  python: DEFAULT_BASE_IMAGES.python,
  node: DEFAULT_BASE_IMAGES.node,
  go: 'golang:1.23-bookworm',
  rust: 'rust:1-slim-bookworm',
};

/** What the planner reads: the names at the top of the app folder and a way to read one of them. */
export interface AppFiles {
  /** names of the entries at the top of the folder */
  names: ReadonlySet<string>;
  /** the text of a top-level file, or undefined */
  read(name: string): string | undefined;
}

/** Options of {@link planApp}. */
export interface PlanOptions {
  /** base image instead of the language's default */
  base?: string;
  /** folder the app lives in inside the image; default /app */
  workdir?: string;
}

/** A zero-config build plan: what was found and the template (steps) it makes. */
export interface AppPlan {
  language: AppLanguage;
  /** the manifests the install step reads (copied alone, before the code) */
  manifests: string[];
  /** the system setup script, when there is one */
  setup?: string;
  /** the start command, when one could be told */
  startCmd?: string[];
  /** the plan as template data (render it with {@link planToDockerfile}) */
  template: TemplateData;
  /** what the planner chose and why, one line each */
  notes: string[];
}

function noApp(): BuildError {
  return new BuildError('ERR_KILN_PLAN_NO_APP', 'no Dockerfile and no dependency manifest kiln knows in the app folder');
}

/** Pick the language from the manifests present (first match wins). */
function detect(f: AppFiles): AppLanguage {
  if (f.names.has('requirements.txt') || f.names.has('pyproject.toml')) return 'python';
  if (f.names.has('package.json')) return 'node';
  if (f.names.has('go.mod')) return 'go';
  if (f.names.has('Cargo.toml')) return 'rust';
  throw noApp();
}

interface LanguagePlan {
  manifests: string[];
  install: TemplateStep;
  /** steps after the code is copied (a compile) */
  after: TemplateStep[];
  startCmd?: string[];
  notes: string[];
}

function run(commands: string | string[], caches: string[]): TemplateStep {
  return { type: 'runCmd', commands: Array.isArray(commands) ? commands : [commands], ...(caches.length ? { caches } : {}) };
}

function firstOf(f: AppFiles, names: string[]): string | undefined {
  return names.find((n) => f.names.has(n));
}

function pythonPlan(f: AppFiles): LanguagePlan {
  const main = firstOf(f, ['main.py', 'app.py', 'server.py']);
  const startCmd = main ? ['python3', main] : undefined;
  if (f.names.has('requirements.txt')) {
    return {
      manifests: ['requirements.txt'],
      install: run('python3 -m pip install --disable-pip-version-check -r requirements.txt', ['pip']),
      after: [],
      ...(startCmd ? { startCmd } : {}),
      notes: ['python: requirements.txt installed with pip before the code is copied'],
    };
  }
  // pyproject.toml alone: install its [project] dependencies (not the project itself, which needs the code)
  const script = [
    "python3 -c \"import tomllib; print('\\n'.join(tomllib.load(open('pyproject.toml', 'rb')).get('project', {}).get('dependencies', [])))\" > /tmp/kiln-requirements.txt",
    'python3 -m pip install --disable-pip-version-check -r /tmp/kiln-requirements.txt',
    'rm -f /tmp/kiln-requirements.txt',
  ];
  return {
    manifests: ['pyproject.toml'],
    install: run(script, ['pip']),
    after: [],
    ...(startCmd ? { startCmd } : {}),
    notes: ['python: the [project] dependencies of pyproject.toml installed with pip before the code is copied'],
  };
}

function nodePlan(f: AppFiles): LanguagePlan {
  let pkg: { scripts?: Record<string, string>; main?: string } = {};
  try {
    pkg = JSON.parse(f.read('package.json') ?? '{}') as typeof pkg;
  } catch {
    throw new BuildError('ERR_KILN_PLAN_NO_APP', 'package.json is not valid JSON');
  }
  const entry = pkg.main ?? firstOf(f, ['index.js', 'server.js', 'app.js', 'main.js']);
  const startCmd = pkg.scripts?.start ? ['npm', 'start'] : entry ? ['node', entry] : undefined;
  const withStart = startCmd ? { startCmd } : {};
  if (f.names.has('pnpm-lock.yaml')) {
    return {
      manifests: ['package.json', 'pnpm-lock.yaml'],
      install: run(['corepack enable', 'pnpm install --frozen-lockfile --store-dir /cache/pnpm/store'], ['pnpm']),
      after: [],
      ...withStart,
      notes: ['node: pnpm-lock.yaml found, pnpm install --frozen-lockfile'],
    };
  }
  if (f.names.has('yarn.lock')) {
    return {
      manifests: ['package.json', 'yarn.lock'],
      install: run(['corepack enable', 'yarn install --frozen-lockfile'], ['yarn']),
      after: [],
      ...withStart,
      notes: ['node: yarn.lock found, yarn install --frozen-lockfile'],
    };
  }
  const lock = firstOf(f, ['package-lock.json', 'npm-shrinkwrap.json']);
  return {
    manifests: ['package.json', ...(lock ? [lock] : [])],
    install: run(lock ? 'npm ci --no-audit --no-fund' : 'npm install --no-audit --no-fund', ['npm']),
    after: [],
    ...withStart,
    notes: [lock ? `node: ${lock} found, npm ci` : 'node: no lock file, npm install'],
  };
}

function goPlan(f: AppFiles): LanguagePlan {
  return {
    manifests: ['go.mod', ...(f.names.has('go.sum') ? ['go.sum'] : [])],
    install: run('go mod download', ['go']),
    after: [run('go build -o /usr/local/bin/app .', ['go'])],
    startCmd: ['/usr/local/bin/app'],
    notes: ['go: modules downloaded from go.mod/go.sum before the code is copied, then go build'],
  };
}

function rustPlan(f: AppFiles): LanguagePlan {
  const name = /\[package\][^[]*?\bname\s*=\s*"([^"]+)"/s.exec(f.read('Cargo.toml') ?? '')?.[1];
  const locked = f.names.has('Cargo.lock');
  return {
    manifests: ['Cargo.toml', ...(locked ? ['Cargo.lock'] : [])],
    // cargo fetch needs a target to read the manifest: a placeholder main.rs, replaced when the code is copied
    install: run(['mkdir -p src', 'test -e src/main.rs || echo "fn main() {}" > src/main.rs', `cargo fetch${locked ? ' --locked' : ''}`], ['cargo']),
    after: [run(`cargo build --release${locked ? ' --locked' : ''}`, ['cargo'])],
    ...(name ? { startCmd: [`./target/release/${name}`] } : {}),
    notes: ['rust: crates fetched from Cargo.toml/Cargo.lock before the code is copied, then cargo build --release'],
  };
}

/**
 * Plan a build for an app folder with no Dockerfile, the cache-friendly way: system setup (`setup.sh`) first, then
 * the dependency manifests alone, then the install step (with the language cache), then the application code, so a
 * code change rebuilds only the last layers. Pure: reads only through `files`.
 *
 * @example
 * const plan = planApp({ names: new Set(['requirements.txt', 'main.py']), read: () => 'flask\n' });
 * planToDockerfile(plan); // FROM python:3.12-slim / WORKDIR /app / COPY requirements.txt ./ / RUN ... / COPY . . / CMD
 */
export function planApp(files: AppFiles, opts: PlanOptions = {}): AppPlan {
  const language = detect(files);
  const lp = { python: pythonPlan, node: nodePlan, go: goPlan, rust: rustPlan }[language](files);
  const workdir = opts.workdir ?? '/app';
  const steps: TemplateStep[] = [{ type: 'setWorkdir', path: workdir }];
  const setup = files.names.has('setup.sh') ? 'setup.sh' : undefined;
  if (setup) {
    steps.push({ type: 'copy', sources: [setup], dest: './', resolveSymlinks: false });
    steps.push(run(`sh ./${setup}`, []));
  }
  steps.push({ type: 'copy', sources: lp.manifests, dest: './', resolveSymlinks: false });
  steps.push(lp.install);
  steps.push({ type: 'copy', sources: ['.'], dest: '.', resolveSymlinks: false });
  steps.push(...lp.after);
  if (lp.startCmd) steps.push({ type: 'setStartCmd', cmd: lp.startCmd });
  const base = opts.base ?? PLANNER_BASE_IMAGES[language];
  const notes = [
    `base image ${base}${opts.base ? '' : ` (the ${language} default; --base picks another)`}`,
    ...(setup ? ['setup.sh runs first (system setup)'] : []),
    ...lp.notes,
    ...(lp.startCmd ? [`start command: ${lp.startCmd.join(' ')}`] : ['no start command found']),
  ];
  return {
    language,
    manifests: lp.manifests,
    ...(setup ? { setup } : {}),
    ...(lp.startCmd ? { startCmd: lp.startCmd } : {}),
    template: { base: { type: 'image', ref: base }, steps },
    notes,
  };
}

/** The plan as Dockerfile text. */
export function planToDockerfile(plan: AppPlan, opts: RenderOptions = {}): string {
  return renderTemplate(plan.template, opts).text;
}

/** Top-level names and files of a folder, for {@link planApp}. */
export function readAppFiles(dir: string): AppFiles {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch (cause) {
    throw new BuildError('ERR_KILN_ARGUMENT', `cannot read the app folder "${dir}"`, { cause });
  }
  return {
    names: new Set(names),
    read: (name) => {
      const p = path.join(dir, name);
      try {
        return statSync(p).isFile() ? readFileSync(p, 'utf8') : undefined;
      } catch {
        return undefined;
      }
    },
  };
}

/**
 * Plan the app in `dir` (see {@link planApp}); the template's context is `dir`.
 *
 * @example
 * process.stdout.write(planToDockerfile(planAppDir('./my-app')));
 */
export function planAppDir(dir: string, opts: PlanOptions = {}): AppPlan {
  if (!existsSync(dir)) throw new BuildError('ERR_KILN_ARGUMENT', `app folder "${dir}" does not exist`);
  const plan = planApp(readAppFiles(dir), opts);
  return { ...plan, template: { ...plan.template, defaultContext: path.resolve(dir) } };
}
