import type { Command, CopyCommand, RunCommand, Stage } from '../frontend/dockerfile/instructions/index.js';

/** One finding of `kiln check`. WARN costs rebuilds (exit status 1); INFO is a suggestion. */
export interface Finding {
  level: 'WARN' | 'INFO';
  rule: string;
  message: string;
  file: string;
  line: number;
}

/** What kiln check knows about the build context (for rules about .dockerignore). */
export interface ContextFacts {
  /** a .dockerignore (or Dockerfile-specific ignore file) exists */
  hasIgnoreFile: boolean;
  /** is this context-relative path excluded by the ignore file? */
  isIgnored(rel: string): boolean;
  fileCount: number;
  bytes: number;
  /** big or volatile folders present at the top of the context (.git, node_modules, ...) */
  bulkyDirs: string[];
}

/** A dependency installer: how to recognise it, what it reads, where its download cache lives. */
interface Installer {
  name: string;
  re: RegExp;
  /** files to COPY before the install (empty: not driven by context files, e.g. apt) */
  manifests: string[];
  cacheTarget: string;
  os?: boolean;
}

const INSTALLERS: Installer[] = [
  { name: 'npm', re: /\bnpm\s+(install|ci|i)\b/, manifests: ['package.json', 'package-lock.json'], cacheTarget: '/root/.npm' },
  { name: 'yarn', re: /\byarn(\s+install\b|\s*($|&&|;|\|))/, manifests: ['package.json', 'yarn.lock'], cacheTarget: '/usr/local/share/.cache/yarn' },
  { name: 'pnpm', re: /\bpnpm\s+(install|i)\b/, manifests: ['package.json', 'pnpm-lock.yaml'], cacheTarget: '/root/.local/share/pnpm/store' },
  { name: 'pip', re: /\bpip3?\s+install\b/, manifests: ['requirements.txt'], cacheTarget: '/root/.cache/pip' },
  { name: 'poetry', re: /\bpoetry\s+install\b/, manifests: ['pyproject.toml', 'poetry.lock'], cacheTarget: '/root/.cache/pypoetry' },
  { name: 'uv', re: /\buv\s+(sync|pip\s+install)\b/, manifests: ['pyproject.toml', 'uv.lock'], cacheTarget: '/root/.cache/uv' },
  { name: 'bundler', re: /\bbundle\s+install\b/, manifests: ['Gemfile', 'Gemfile.lock'], cacheTarget: '/usr/local/bundle/cache' },
  { name: 'composer', re: /\bcomposer\s+install\b/, manifests: ['composer.json', 'composer.lock'], cacheTarget: '/root/.composer/cache' },
  { name: 'go', re: /\bgo\s+mod\s+download\b/, manifests: ['go.mod', 'go.sum'], cacheTarget: '/root/go/pkg/mod' },
  { name: 'cargo', re: /\bcargo\s+(fetch|build|install)\b/, manifests: ['Cargo.toml', 'Cargo.lock'], cacheTarget: '/usr/local/cargo/registry' },
  { name: 'maven', re: /\bmvn\b/, manifests: ['pom.xml'], cacheTarget: '/root/.m2' },
  { name: 'gradle', re: /\bgradlew?\b/, manifests: ['build.gradle', 'settings.gradle'], cacheTarget: '/root/.gradle' },
  { name: 'apt-get', re: /\bapt(-get)?\s+(-\S+\s+)*install\b/, manifests: [], cacheTarget: '/var/cache/apt', os: true },
  { name: 'apk', re: /\bapk\s+(-\S+\s+)*add\b/, manifests: [], cacheTarget: '/var/cache/apk', os: true },
  { name: 'dnf', re: /\b(dnf|yum|microdnf)\s+(-\S+\s+)*install\b/, manifests: [], cacheTarget: '/var/cache/dnf', os: true },
];

/** The text a RUN executes: its command line and heredoc bodies. */
function runText(r: RunCommand): string {
  return [...r.cmdLine, ...r.files.map((f) => f.content)].join('\n');
}

function installerOf(r: RunCommand): Installer | undefined {
  const t = runText(r);
  return INSTALLERS.find((i) => i.re.test(t));
}

function hasCacheMount(r: RunCommand): boolean {
  return r.mounts.some((m) => /(^|,)\s*type=cache\b/.test(m));
}

const WHOLE = new Set(['.', './', '*', './*', '/', '.*']);

/** COPY/ADD of the whole build context (`COPY . .`). */
function copiesWholeContext(c: Command): c is CopyCommand {
  return (c.name === 'copy' || c.name === 'add') && !c.from && c.sources.some((s) => WHOLE.has(s.trim()));
}

const line = (c: { location: { startLine: number } }): number => c.location.startLine;
const text = (c: { original: string }): string => c.original.replace(/\s+/g, ' ').trim();

/** COPY . . before a dependency install in the same stage: any source edit re-runs the install. */
export function wholeCopyBeforeInstall(stage: Stage, file: string): Finding[] {
  const out: Finding[] = [];
  for (let i = 0; i < stage.commands.length; i++) {
    const c = stage.commands[i]!;
    if (!copiesWholeContext(c)) continue;
    const later = stage.commands.slice(i + 1).filter((x): x is RunCommand => x.name === 'run');
    const install = later.find((r) => installerOf(r));
    if (!install) continue;
    const inst = installerOf(install)!;
    const advice = inst.os
      ? `move the ${inst.name} step above the COPY`
      : `COPY ${inst.manifests.join(' ')} first, run the install, then COPY the rest`;
    out.push({
      level: 'WARN',
      rule: 'CopyBeforeDependencyInstall',
      message: `"${text(c)}" copies the whole context before "${text(install)}" (line ${line(install)}): any change to any file re-runs the install; ${advice}`,
      file,
      line: line(c),
    });
  }
  return out;
}

/** `apt-get update` in a RUN of its own: cached forever, later installs read a stale index. */
export function aptUpdateAlone(stage: Stage, file: string): Finding[] {
  const out: Finding[] = [];
  for (const c of stage.commands) {
    if (c.name !== 'run') continue;
    const t = runText(c);
    const update = /\b(apt-get|apt)\s+(-\S+\s+)*update\b/.test(t) ? 'apt-get' : /\bapk\s+update\b/.test(t) ? 'apk' : /\b(yum|dnf)\s+makecache\b/.test(t) ? 'dnf' : undefined;
    if (!update) continue;
    if (/\b(install|add|upgrade)\b/.test(t.replace(/\b(apt-get|apt)\s+(-\S+\s+)*update\b/g, ''))) continue;
    out.push({
      level: 'WARN',
      rule: 'PackageIndexUpdateAlone',
      message: `"${text(c)}" updates the package index in a step of its own: its cached result goes stale while later install steps keep hitting the cache; run the update and the install in one RUN (apt-get update && apt-get install -y ...)`,
      file,
      line: line(c),
    });
  }
  return out;
}

/** Package-manager downloads without a cache mount: every rebuild downloads everything again. */
export function downloadsWithoutCacheMount(stage: Stage, file: string): Finding[] {
  const out: Finding[] = [];
  for (const c of stage.commands) {
    if (c.name !== 'run' || hasCacheMount(c)) continue;
    const inst = installerOf(c);
    if (!inst) continue;
    const extra = inst.name === 'apt-get' ? ' --mount=type=cache,target=/var/lib/apt,sharing=locked' : '';
    out.push({
      level: 'INFO',
      rule: 'PackageCacheMount',
      message: `"${text(c)}" downloads ${inst.name} packages again on every rebuild of this step; add RUN --mount=type=cache,target=${inst.cacheTarget}${inst.name === 'apt-get' ? ',sharing=locked' : ''}${extra} to keep downloads between builds`,
      file,
      line: line(c),
    });
  }
  return out;
}

const VOLATILE_ARG = /(^|_)(DATE|TIME|TIMESTAMP|COMMIT|SHA|REVISION|REV|BUILD_?ID|BUILD_?NUMBER|BUILD_?TIME|GIT_\w+|CI_\w+|VERSION)($|_)/i;

/** An ARG whose value changes every build, declared before RUN steps that do not need it. */
export function volatileArgEarly(stage: Stage, file: string): Finding[] {
  const out: Finding[] = [];
  stage.commands.forEach((c, i) => {
    if (c.name !== 'arg') return;
    for (const a of c.args) {
      if (!VOLATILE_ARG.test(a.key)) continue;
      const runs = stage.commands.slice(i + 1).filter((x): x is RunCommand => x.name === 'run');
      const uses = new RegExp(`\\$\\{?${a.key}\\b`);
      const firstUse = runs.findIndex((r) => uses.test(runText(r)));
      const before = firstUse < 0 ? runs : runs.slice(0, firstUse);
      if (before.length === 0) continue;
      out.push({
        level: 'WARN',
        rule: 'VolatileArgEarly',
        message: `ARG ${a.key} looks like it changes every build and is declared before ${before.length} RUN step${before.length === 1 ? '' : 's'} that ${firstUse < 0 ? 'do' : 'come before its use and'} not use it (first: line ${line(before[0]!)}); a build arg is part of the cache key of every later RUN in the stage, so each new value rebuilds them: declare it right before the step that needs it`,
        file,
        line: line(c),
      });
    }
  });
  return out;
}

const SECRET_TOKENS = new Set(['apikey', 'auth', 'credential', 'credentials', 'key', 'password', 'pword', 'passwd', 'secret', 'token']);

/**
 * Could any name in this text look secret? A name looks secret when one of its words is a token, so the token is
 * then in the lower-cased text: a text holding none of them needs no parse (a quick exact pre-check).
 */
export function mayNameSecrets(text: string): boolean {
  const lower = text.toLowerCase();
  for (const t of SECRET_TOKENS) if (lower.includes(t)) return true;
  return false;
}

function looksSecret(name: string): boolean {
  const words = name.replace(/([a-z])([A-Z])/g, '$1_$2').toLowerCase().split(/[^a-z0-9]+/).filter(Boolean);
  return words.some((w) => SECRET_TOKENS.has(w)) && !words.includes('public');
}

/** BuildKit's SecretsUsedInArgOrEnv: a secret in ARG/ENV lands in cache keys, history and the image. */
export function secretsInArgOrEnv(stages: Stage[], metaArgs: Array<{ args: Array<{ key: string }>; location: { startLine: number } }>, file: string): Finding[] {
  const out: Finding[] = [];
  const report = (kind: string, key: string, ln: number): void => {
    out.push({ level: 'WARN', rule: 'SecretsUsedInArgOrEnv', message: `Do not use ARG or ENV instructions for sensitive data (${kind} "${key}"): the value enters cache keys, build history and the image; use RUN --mount=type=secret`, file, line: ln });
  };
  for (const m of metaArgs) for (const a of m.args) if (looksSecret(a.key)) report('ARG', a.key, m.location.startLine);
  for (const s of stages) {
    for (const c of s.commands) {
      if (c.name === 'arg') for (const a of c.args) if (looksSecret(a.key)) report('ARG', a.key, line(c));
      if (c.name === 'env') for (const e of c.env) if (looksSecret(e.key)) report('ENV', e.key, line(c));
    }
  }
  return out;
}

/** BuildKit's CopyIgnoredFile: a COPY source the ignore file excludes. */
export function copyIgnoredFile(stage: Stage, file: string, ctx: ContextFacts | undefined): Finding[] {
  if (!ctx?.hasIgnoreFile) return [];
  const out: Finding[] = [];
  for (const c of stage.commands) {
    if ((c.name !== 'copy' && c.name !== 'add') || c.from) continue;
    for (const src of c.sources) {
      if (WHOLE.has(src.trim()) || /[*?[\]$]/.test(src) || /^[a-z]+:\/\//i.test(src)) continue;
      const rel = src.replace(/^\.?\/+/, '').replace(/\/+$/, '');
      if (rel && ctx.isIgnored(rel)) out.push({ level: 'WARN', rule: 'CopyIgnoredFile', message: `Attempting to Copy file "${src}" that is excluded by .dockerignore`, file, line: line(c) });
    }
  }
  return out;
}

/** A whole-context COPY with no .dockerignore over a large or volatile context. */
export function missingDockerignore(stages: Stage[], file: string, ctx: ContextFacts | undefined): Finding[] {
  if (!ctx || ctx.hasIgnoreFile) return [];
  const copy = stages.flatMap((s) => s.commands).find(copiesWholeContext);
  if (!copy) return [];
  const large = ctx.fileCount > 5000 || ctx.bytes > 50_000_000;
  if (!large && ctx.bulkyDirs.length === 0) return [];
  const what = [`${ctx.fileCount} files`, `${(ctx.bytes / 1e6).toFixed(1)}MB`, ...(ctx.bulkyDirs.length ? [`including ${ctx.bulkyDirs.join(', ')}`] : [])].join(', ');
  return [{
    level: 'WARN',
    rule: 'NoDockerignore',
    message: `"${text(copy)}" copies a context of ${what} and there is no .dockerignore: every change there (a commit, a local build) invalidates this step; add a .dockerignore (for example .git, node_modules, build output)`,
    file,
    line: line(copy),
  }];
}
