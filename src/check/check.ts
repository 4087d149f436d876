import { existsSync, lstatSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { BuildError } from '../errors/index.js';
import { parseDockerfile } from '../frontend/dockerfile/instructions/index.js';
import { createPatternMatcher, MAX_DOCKERFILE_BYTES, readBoundedText, readIgnorePatterns } from '../context/index.js';
import type { BuildRecord } from '../metadata/index.js';
import {
  aptUpdateAlone,
  copyIgnoredFile,
  downloadsWithoutCacheMount,
  mayNameSecrets,
  missingDockerignore,
  secretsInArgOrEnv,
  volatileArgEarly,
  wholeCopyBeforeInstall,
  type ContextFacts,
  type Finding,
} from './rules.js';
import { frequentInvalidation } from './history-rule.js';

const BULKY = ['.git', 'node_modules', 'target', 'dist', 'build', '.venv', '__pycache__'];
const WALK_LIMIT = 200_000;

/** Count files and bytes of a context (stops counting at 200k entries), and note bulky top-level folders. */
export async function contextFacts(opts: { contextDir: string; dockerfilePath?: string }): Promise<ContextFacts> {
  const patterns = await readIgnorePatterns(opts);
  const hasIgnoreFile = existsSync(path.join(opts.contextDir, '.dockerignore')) || (opts.dockerfilePath !== undefined && existsSync(`${opts.dockerfilePath}.dockerignore`));
  const matcher = createPatternMatcher(patterns);
  let fileCount = 0;
  let bytes = 0;
  const stack = [opts.contextDir];
  while (stack.length && fileCount < WALK_LIMIT) {
    const dir = stack.pop()!;
    let names: string[];
    try {
      names = readdirSync(dir);
    } catch {
      continue;
    }
    for (const n of names) {
      const p = path.join(dir, n);
      const rel = path.relative(opts.contextDir, p);
      if (hasIgnoreFile && matcher.matches(rel)) continue;
      let st;
      try {
        st = lstatSync(p);
      } catch {
        continue;
      }
      fileCount++;
      bytes += st.size;
      if (st.isDirectory()) stack.push(p);
    }
  }
  const bulkyDirs = BULKY.filter((d) => existsSync(path.join(opts.contextDir, d)) && !(hasIgnoreFile && matcher.matches(d)));
  return { hasIgnoreFile, isIgnored: (rel) => matcher.matches(rel), fileCount, bytes, bulkyDirs };
}

/**
 * Lint a Dockerfile for cache-hostile patterns. `context` enables the .dockerignore rules; `builds` (the state
 * directory's history) enables the rule naming the step that invalidates most often.
 *
 * @example
 * const findings = lintDockerfile({ text: 'FROM node\nCOPY . .\nRUN npm install\n', file: 'Dockerfile' });
 * findings[0].rule // 'CopyBeforeDependencyInstall'
 */
/**
 * Only BuildKit's SecretsUsedInArgOrEnv findings: what `kiln build` warns about while it builds (the rest of the
 * rules are `kiln check`'s).
 *
 * @example
 * for (const f of secretWarnings({ text: 'FROM a\nARG TOKEN\n', file: 'Dockerfile' })) console.warn(formatFinding(f));
 */
export function secretWarnings(opts: { text: string; file: string }): Finding[] {
  if (!mayNameSecrets(opts.text)) return [];
  const df = parseDockerfile(opts.text, { file: opts.file });
  return secretsInArgOrEnv(df.stages, df.metaArgs, opts.file);
}

export function lintDockerfile(opts: { text: string; file: string; dockerfilePath?: string; context?: ContextFacts; builds?: BuildRecord[] }): Finding[] {
  const df = parseDockerfile(opts.text, { file: opts.file });
  const out: Finding[] = [];
  for (const st of df.stages) {
    out.push(...wholeCopyBeforeInstall(st, opts.file));
    out.push(...aptUpdateAlone(st, opts.file));
    out.push(...volatileArgEarly(st, opts.file));
    out.push(...copyIgnoredFile(st, opts.file, opts.context));
    out.push(...downloadsWithoutCacheMount(st, opts.file));
  }
  out.push(...secretsInArgOrEnv(df.stages, df.metaArgs, opts.file));
  out.push(...missingDockerignore(df.stages, opts.file, opts.context));
  if (opts.builds && opts.dockerfilePath) out.push(...frequentInvalidation({ builds: opts.builds, dockerfile: opts.dockerfilePath, stages: df.stages, file: opts.file }));
  return out.sort((a, b) => a.line - b.line || (a.level === b.level ? 0 : a.level === 'WARN' ? -1 : 1));
}

/** `kiln check`: read the Dockerfile and context, lint. */
export async function checkBuild(opts: { contextDir: string; dockerfile?: string; builds?: BuildRecord[] }): Promise<{ findings: Finding[]; file: string }> {
  const contextDir = path.resolve(opts.contextDir);
  if (!existsSync(contextDir)) throw new BuildError('ERR_KILN_ARGUMENT', `build context "${opts.contextDir}" does not exist`);
  const dockerfilePath = opts.dockerfile ? path.resolve(opts.dockerfile) : path.join(contextDir, 'Dockerfile');
  const read = await readBoundedText({ file: dockerfilePath, what: 'Dockerfile', maxBytes: MAX_DOCKERFILE_BYTES });
  if (read === null) throw new BuildError('ERR_KILN_DOCKERFILE_NOT_FOUND', `cannot read Dockerfile "${dockerfilePath}": no such file`);
  const text = read;
  const file = opts.dockerfile ?? 'Dockerfile';
  const context = await contextFacts({ contextDir, dockerfilePath });
  return { findings: lintDockerfile({ text, file, dockerfilePath, context, ...(opts.builds ? { builds: opts.builds } : {}) }), file };
}

/** `WARN RuleName: message (FILE:LINE)` */
export function formatFinding(f: Finding): string {
  return `${f.level} ${f.rule}: ${f.message} (${f.file}:${f.line})`;
}
