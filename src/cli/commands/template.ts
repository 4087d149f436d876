import type { Command } from 'commander';
import { existsSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { BuildError } from '../../errors/index.js';
import { parseAssignments } from '../../flags/index.js';
import { isTemplate, prepareTemplateBuild, renderTemplate, templateJSON, type TemplateData } from '../../sdk/index.js';
import { planAppDir } from '../../planner/index.js';
import type { SecretSource } from '../../graph/index.js';
import type { BuildRequest, StartCheck } from '../../engine/index.js';
import type { CliContext } from '../shared.js';
import { registerTemplateResources } from './remote.js';

const TEMPLATE_FILE = /\.(ts|mts|cts|js|mjs|cjs)$/;
/** Set while `kiln build FILE` loads a template file: the folder `Template()` takes as its default context. */
const LOADING_DIR = Symbol.for('kiln.template.loading-dir');
const TEMPLATE_DATA_KEY = Symbol.for('kiln.template.data');

/** Where in the template file an error was thrown (`file:line:col`), from the frames that name it. */
function locationInFile(abs: string, stack: string): string | undefined {
  const enc = encodeURIComponent(abs);
  for (const line of stack.split('\n').slice(1)) {
    if (!line.includes(abs) && !line.includes(enc)) continue;
    const m = /:(\d+):(\d+)\)?\s*$/.exec(line);
    if (m) return `${abs}:${m[1]}:${m[2]}`;
  }
  return undefined;
}

/** What went wrong loading a template file, said plainly: a syntax error with its line, a missing module, a throw. */
function describeLoadError(file: string, abs: string, cause: unknown): BuildError {
  const e = cause as { name?: string; message?: string; code?: string; stack?: string };
  const message = typeof e?.message === 'string' ? e.message : String(cause);
  if (e?.name === 'TransformError' || /^Transform failed/.test(message)) {
    // esbuild: "<file>:<line>:<col>: ERROR: <text>"
    const m = /^(.*?):(\d+):(\d+): ERROR: (.*)$/m.exec(message);
    const where = m ? `${m[1]}:${m[2]}:${m[3]}` : file;
    const lineText = m ? readLine(m[1]!, Number(m[2])) : undefined;
    return new BuildError('ERR_KILN_TEMPLATE_LOAD', `${where}: syntax error: ${m ? m[4] : message.split('\n').slice(1).join(' ')}${lineText !== undefined ? `\n  ${m![2]} | ${lineText}` : ''}`, {
      cause,
      hint: 'fix the TypeScript syntax at that line (npx tsc --noEmit shows every problem)',
    });
  }
  const missing = /Cannot find (?:module|package) '([^']+)'/.exec(message);
  if (missing && (e.code === 'MODULE_NOT_FOUND' || e.code === 'ERR_MODULE_NOT_FOUND')) {
    const name = missing[1]!;
    const pkg = name.startsWith('@') ? name.split('/').slice(0, 2).join('/') : name.split('/')[0]!;
    const local = name.startsWith('.') || name.startsWith('/');
    return new BuildError('ERR_KILN_TEMPLATE_LOAD', `cannot load template file "${file}": it imports "${name}", which is not installed where the file is`, {
      cause,
      hint: local
        ? `check the path "${name}" relative to ${path.dirname(abs)}`
        : pkg === 'kiln'
          ? `install kiln in the template's project: cd ${path.dirname(abs)} && npm install kiln (or the packed tarball: npm install /path/to/kiln-VERSION.tgz)`
          : `install it in the template's project: cd ${path.dirname(abs)} && npm install ${pkg}`,
    });
  }
  const at = typeof e?.stack === 'string' ? locationInFile(abs, e.stack) : undefined;
  return new BuildError('ERR_KILN_TEMPLATE_LOAD', `cannot load template file "${file}": ${message.split('\n')[0]}${at ? ` (thrown at ${at})` : ''}`, {
    cause,
    hint: 'the file threw while it ran; fix the code there',
  });
}

function readLine(file: string, line: number): string | undefined {
  try {
    return readFileSync(file, 'utf8').split('\n')[line - 1];
  } catch {
    return undefined;
  }
}

/** Is this build argument a template file (rather than a context folder)? */
export function isTemplateFile(p: string): boolean {
  return TEMPLATE_FILE.test(p) && existsSync(p) && statSync(p).isFile();
}

/**
 * Load a template file: its default export (or an export named `template`) must be a template with a base image.
 * TypeScript files are loaded with tsx; `copy()` sources resolve against the file's folder.
 */
export async function loadTemplateFile(file: string): Promise<TemplateData> {
  const abs = path.resolve(file);
  if (!existsSync(abs)) throw new BuildError('ERR_KILN_TEMPLATE_LOAD', `template file "${file}" does not exist`);
  let mod: Record<string, unknown>;
  // templates made while this file loads take its folder as their context (every copy of the SDK reads this)
  (globalThis as Record<symbol, unknown>)[LOADING_DIR] = path.dirname(abs);
  try {
    if (/\.(ts|mts|cts)$/.test(abs)) {
      const { tsImport } = await import('tsx/esm/api');
      mod = (await tsImport(pathToFileURL(abs).href, import.meta.url)) as Record<string, unknown>;
    } else {
      mod = (await import(pathToFileURL(abs).href)) as Record<string, unknown>;
    }
  } catch (cause) {
    if (cause instanceof BuildError) throw cause;
    throw describeLoadError(file, abs, cause);
  } finally {
    delete (globalThis as Record<symbol, unknown>)[LOADING_DIR];
  }
  let candidate = mod.default ?? mod.template;
  // a CommonJS-style default export arrives wrapped once more
  if (!isTemplate(candidate) && candidate && typeof candidate === 'object' && 'default' in candidate) candidate = (candidate as { default: unknown }).default;
  if (!isTemplate(candidate)) {
    const names = Object.keys(candidate && typeof candidate === 'object' && mod.default === candidate && !('default' in mod && Object.keys(mod).length > 1) ? candidate : mod).filter((k) => k !== 'default');
    const got = candidate === undefined || (typeof candidate === 'object' && candidate !== null && !(TEMPLATE_DATA_KEY in candidate))
      ? `it exports ${names.length ? names.map((k) => `"${k}"`).join(', ') : 'nothing'}, and no default Template (an empty Template() needs a from* method)`
      : `its default export is a ${typeof candidate}`;
    throw new BuildError('ERR_KILN_TEMPLATE_LOAD', `"${file}" does not export a template with a base image as its default export: ${got}`);
  }
  const data = candidate[Symbol.for('kiln.template.data') as never] as TemplateData;
  return { ...data, defaultContext: path.dirname(abs) };
}

/** What `kiln build` hands the engine, whatever it was given (a Dockerfile context, a template file, an app folder). */
export interface BuildInput {
  contextDir: string;
  dockerfile?: string;
  dockerfileText?: string;
  /** a template's steps after the Dockerfile text (its base), each with the caller's file and line */
  steps?: BuildRequest['steps'];
  /** secrets the input adds (build env, CA bundle) */
  secrets: SecretSource[];
  /** a template's start command, proven at the end of the build */
  startCheck?: StartCheck;
  cleanup(): Promise<void>;
}

/** Options of {@link resolveBuildInput}. */
export interface ResolveBuildInputOptions {
  /** the `kiln build` argument: a context folder or a template file */
  context: string;
  /** `-f FILE` */
  file?: string;
  /** `--build-env KEY=VALUE` / `KEY` (from the environment): for template and planned builds */
  buildEnv?: string[];
  /** `--ca-bundle FILE` */
  caBundle?: string;
  /** `--base IMAGE` for a planned build */
  base?: string;
  /** `--ready-timeout SECONDS` for a template's start check */
  readyTimeoutMs?: number;
}

/**
 * Decide what a `kiln build ARG` builds: a template file (`.ts`/`.js`), a folder with a Dockerfile (or `-f`), or a
 * folder without one (planned zero-config: see `kiln plan`).
 */
export async function resolveBuildInput(o: ResolveBuildInputOptions): Promise<BuildInput> {
  const none = async (): Promise<void> => undefined;
  const env = parseAssignments(o.buildEnv ?? []);
  const prep = { env, ...(o.caBundle ? { caBundle: o.caBundle } : {}), ...(o.readyTimeoutMs !== undefined ? { readyTimeoutMs: o.readyTimeoutMs } : {}) };
  if (!o.file && isTemplateFile(o.context)) {
    const data = await loadTemplateFile(o.context);
    const p = await prepareTemplateBuild(data, prep);
    return {
      contextDir: data.defaultContext!, dockerfile: `${path.basename(o.context)}.Dockerfile`, dockerfileText: p.baseText, steps: p.steps, secrets: p.secrets,
      ...(p.startCheck ? { startCheck: p.startCheck } : {}), cleanup: p.cleanup,
    };
  }
  const hasDockerfile = o.file !== undefined || existsSync(path.join(o.context, 'Dockerfile'));
  if (!hasDockerfile && existsSync(o.context) && statSync(o.context).isDirectory()) {
    const plan = planAppDir(o.context, o.base ? { base: o.base } : {});
    const p = await prepareTemplateBuild(plan.template, prep);
    return { contextDir: o.context, dockerfileText: p.baseText, steps: p.steps, secrets: p.secrets, cleanup: p.cleanup };
  }
  return { contextDir: o.context, ...(o.file ? { dockerfile: o.file } : {}), secrets: [], cleanup: none };
}

/** `kiln template dockerfile|json FILE` */
export function registerTemplate(program: Command, cli: CliContext): void {
  const t = program.command('template').description('Show a template file as a Dockerfile or JSON; list, inspect and delete templates on a build service (--host)');
  t.command('dockerfile')
    .description('Print the Dockerfile a template file renders to')
    .argument('<file>', 'template file')
    .action(async (file: string) => {
      const data = await loadTemplateFile(file);
      process.stdout.write(renderTemplate(data).text);
    });
  t.command('json')
    .description('Print a template file as JSON (steps with their instructions)')
    .argument('<file>', 'template file')
    .action(async (file: string) => {
      const data = await loadTemplateFile(file);
      process.stdout.write(`${JSON.stringify(templateJSON(data), null, 2)}\n`);
    });
  registerTemplateResources(t, cli);
}
