import path from 'node:path';
import { BuildError } from '../errors/index.js';
import type { MountDef } from '../graph/index.js';
import { LANG_CACHE_LAYOUT, LANG_CACHE_PATH_DIRS, type LangCacheEntry } from './layout.js';

/** Options shared by every language-cache helper. */
export interface LangCacheOptions {
  /** tools to turn on (names from {@link LANG_CACHE_LAYOUT}); default all */
  tools?: string[];
  /** owner of the cache directories; default 1000 */
  uid?: number;
  /** default 1000 */
  gid?: number;
  /** permission bits of the cache directories; default 0o755 */
  mode?: number;
  /** cache mount sharing; default `shared` (the tools lock their own caches) */
  sharing?: 'shared' | 'private' | 'locked';
}

/** What a step needs to use the language caches: cache mounts, env vars, PATH additions. */
export interface LangCachePlan {
  /** one `type=cache` mount per cache path, id `lang-<tool>` (or `lang-<tool>-<sub>`) */
  mounts: MountDef[];
  /** env vars of the selected tools (KEY → value) */
  env: Record<string, string>;
  /** directories to append to PATH (programs installed into the layout) */
  pathDirs: string[];
  /** every directory of the layout, with owner and mode (for warming and skeletons) */
  dirs: Array<{ path: string; uid: number; gid: number; mode: number }>;
}

/** The selected entries, with a clear error for an unknown tool name. */
export function selectLangCaches(tools?: string[]): LangCacheEntry[] {
  if (!tools || tools.length === 0) return [...LANG_CACHE_LAYOUT];
  const known = new Map(LANG_CACHE_LAYOUT.map((e) => [e.tool, e]));
  const out: LangCacheEntry[] = [];
  for (const t of tools) {
    // "go" and "ruby" name both of their directories
    const group = LANG_CACHE_LAYOUT.filter((e) => e.tool === t || (e.tool.startsWith(`${t}-`) && !known.has(t)));
    if (group.length === 0) {
      throw new BuildError('ERR_KILN_ARGUMENT', `unknown language cache "${t}" (known: ${[...known.keys()].join(', ')})`);
    }
    for (const e of group) if (!out.includes(e)) out.push(e);
  }
  return out;
}

/**
 * The cache mounts and environment for the language caches: the function a package step (Dockerfile RUN with
 * `--lang-cache`, or the SDK's package steps) calls to download through the shared caches.
 *
 * @example
 * const plan = langCachePlan({ tools: ['pip', 'npm'] });
 * // plan.mounts → [{ type: 'cache', id: 'lang-pip', target: '/cache/pip', uid: 1000, gid: 1000, mode: 0o755, ... }, ...]
 * // plan.env → { PIP_CACHE_DIR: '/cache/pip', NPM_CONFIG_CACHE: '/cache/npm' }
 */
export function langCachePlan(opts: LangCacheOptions = {}): LangCachePlan {
  const uid = opts.uid ?? 1000;
  const gid = opts.gid ?? 1000;
  const mode = opts.mode ?? 0o755;
  const entries = selectLangCaches(opts.tools);
  const mounts: MountDef[] = [];
  const env: Record<string, string> = {};
  const dirs: LangCachePlan['dirs'] = [];
  for (const e of entries) {
    Object.assign(env, e.env);
    dirs.push({ path: e.dir, uid, gid, mode });
    for (const sub of e.cachePaths) {
      const target = sub === '.' ? e.dir : path.posix.join(e.dir, sub);
      if (sub !== '.') dirs.push({ path: target, uid, gid, mode });
      mounts.push({
        type: 'cache',
        id: sub === '.' ? `lang-${e.tool}` : `lang-${e.tool}-${sub}`,
        target,
        sharing: opts.sharing ?? 'shared',
        uid,
        gid,
        mode,
      });
    }
  }
  const pathDirs = LANG_CACHE_PATH_DIRS.filter((d) => entries.some((e) => d === e.dir || d.startsWith(`${e.dir}/`)));
  return { mounts, env, pathDirs, dirs };
}

/**
 * Add the plan's variables to an env list (`KEY=value` entries): a variable the list already sets is kept as is, and
 * the plan's PATH dirs are appended to PATH (after the default PATH when none is set).
 */
export function withLangCacheEnv(env: string[], plan: Pick<LangCachePlan, 'env' | 'pathDirs'>, defaultPath: string): string[] {
  const out = [...env];
  const has = (k: string): number => out.findIndex((e) => e.startsWith(`${k}=`));
  for (const [k, v] of Object.entries(plan.env)) if (has(k) < 0) out.push(`${k}=${v}`);
  if (plan.pathDirs.length) {
    const i = has('PATH');
    const cur = i < 0 ? defaultPath : out[i]!.slice(5);
    const parts = cur.split(':');
    const next = [...parts, ...plan.pathDirs.filter((d) => !parts.includes(d))].join(':');
    if (i < 0) out.push(`PATH=${next}`);
    else out[i] = `PATH=${next}`;
  }
  return out;
}

/** Is `p` equal to or below `dir` (POSIX paths)? */
export function isWithin(p: string, dir: string): boolean {
  const a = path.posix.resolve('/', p);
  const b = path.posix.resolve('/', dir);
  return a === b || a.startsWith(b === '/' ? '/' : `${b}/`);
}
