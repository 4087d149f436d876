import type { Command } from 'commander';
import { existsSync, statSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { BuildError } from '../../errors/index.js';
import { parseAssignments } from '../../flags/index.js';
import { isTemplate, prepareTemplateBuild, renderTemplate, templateJSON, type TemplateData } from '../../sdk/index.js';
import { planAppDir } from '../../planner/index.js';
import type { SecretSource } from '../../ops/index.js';
import type { CliContext } from '../shared.js';
import { registerTemplateResources } from './remote.js';

const TEMPLATE_FILE = /\.(ts|mts|cts|js|mjs|cjs)$/;

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
  try {
    if (/\.(ts|mts|cts)$/.test(abs)) {
      const { tsImport } = await import('tsx/esm/api');
      mod = (await tsImport(pathToFileURL(abs).href, import.meta.url)) as Record<string, unknown>;
    } else {
      mod = (await import(pathToFileURL(abs).href)) as Record<string, unknown>;
    }
  } catch (cause) {
    if (cause instanceof BuildError) throw cause;
    const msg = cause instanceof Error ? cause.message.split('\n')[0] : String(cause);
    throw new BuildError('ERR_KILN_TEMPLATE_LOAD', `cannot load template file "${file}": ${msg}`, { cause });
  }
  let candidate = mod.default ?? mod.template;
  // a CommonJS-style default export arrives wrapped once more
  if (!isTemplate(candidate) && candidate && typeof candidate === 'object' && 'default' in candidate) candidate = (candidate as { default: unknown }).default;
  if (!isTemplate(candidate)) {
    throw new BuildError('ERR_KILN_TEMPLATE_LOAD', `"${file}" does not export a template with a base image as its default export`);
  }
  const data = candidate[Symbol.for('kiln.template.data') as never] as TemplateData;
  return { ...data, defaultContext: path.dirname(abs) };
}

/** What `kiln build` hands the engine, whatever it was given (a Dockerfile context, a template file, an app folder). */
export interface BuildInput {
  contextDir: string;
  dockerfile?: string;
  dockerfileText?: string;
  noCacheLines?: number[];
  /** secrets the input adds (build env, CA bundle) */
  secrets: SecretSource[];
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
}

/**
 * Decide what a `kiln build ARG` builds: a template file (`.ts`/`.js`), a folder with a Dockerfile (or `-f`), or a
 * folder without one (planned zero-config: see `kiln plan`).
 */
export async function resolveBuildInput(o: ResolveBuildInputOptions): Promise<BuildInput> {
  const none = async (): Promise<void> => undefined;
  const env = parseAssignments(o.buildEnv ?? []);
  const prep = { env, ...(o.caBundle ? { caBundle: o.caBundle } : {}) };
  if (!o.file && isTemplateFile(o.context)) {
    const data = await loadTemplateFile(o.context);
    const p = await prepareTemplateBuild(data, prep);
    return { contextDir: data.defaultContext!, dockerfile: `${path.basename(o.context)}.Dockerfile`, dockerfileText: p.dockerfileText, noCacheLines: p.noCacheLines, secrets: p.secrets, cleanup: p.cleanup };
  }
  const hasDockerfile = o.file !== undefined || existsSync(path.join(o.context, 'Dockerfile'));
  if (!hasDockerfile && existsSync(o.context) && statSync(o.context).isDirectory()) {
    const plan = planAppDir(o.context, o.base ? { base: o.base } : {});
    const p = await prepareTemplateBuild(plan.template, prep);
    return { contextDir: o.context, dockerfileText: p.dockerfileText, noCacheLines: p.noCacheLines, secrets: p.secrets, cleanup: p.cleanup };
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
