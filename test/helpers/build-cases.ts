/**
 * Shared by the tests that replay buildah's conformance build cases (`../shared/conformance/build-cases/`): the
 * index and Docker's results, preparing a case's context (git symlinks restored, upstream's setup steps applied),
 * reading a directory tree, and comparing a tree with Docker's result.
 */
import { execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import tarStream from 'tar-stream';
import { createPatternMatcher } from '../../src/context/index.js';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

/** Where the build cases live (resolved relative to the repo, never copied into it). */
export const casesDir = path.resolve(repoRoot, '..', 'shared', 'conformance', 'build-cases');

/** Upstream's testDate: context files get this mtime. */
export const TEST_DATE = 1485449953;

export interface SetupOp {
  op: 'mkdir' | 'write_file' | 'write_tar';
  path: string;
  mode?: string;
  uid?: number;
  gid?: number;
  mtime?: number;
  content?: string;
  chmod_after_create?: boolean;
  xattrs?: Record<string, string>;
  entries?: Array<{ name: string; type: 'reg' | 'dir'; content?: string; mode: string; uid: number; gid: number; mtime: number; pax_records?: Record<string, string> }>;
}

export interface BuildCase {
  case: string;
  dockerfile: string;
  base_images: string[];
  from_refs: string[];
  features: string[];
  setup?: SetupOp[];
  build_args?: Record<string, string>;
  expect_failure_at_line?: number;
  failure_regex?: string;
  fs_skip?: string[];
  fail_on_extra_fs_content?: boolean;
  context_requires?: Array<{ path: string; what: string }>;
  base_image_paths_used_by_RUN?: string[];
}

/** One filesystem entry as expected-docker.json records it. */
export interface FsEntry {
  type: string;
  mode: number;
  uid: number;
  gid: number;
  size: number | null;
  sha256: string | null;
  link: string | null;
  mtime: number;
}

/** The image config fields Docker's results record. */
export interface DockerConfig {
  Cmd: string[] | null;
  Entrypoint: string[] | null;
  Env: Record<string, string>;
  ExposedPorts: Record<string, unknown> | null;
  Labels: Record<string, string> | null;
  StopSignal: string | null;
  User: string | null;
  Volumes: Record<string, unknown> | null;
  WorkingDir: string | null;
}

/** Docker's result for one builder. */
export interface DockerResult {
  base_cfg: DockerConfig;
  cfg: DockerConfig;
  fs: { del: string[]; set: Record<string, FsEntry> };
}

/** Docker's results per case: a builder that could not build the case has no result. */
export type ExpectedResults = Record<string, { buildkit?: DockerResult | null; classic?: DockerResult | null }>;

/** The case index and Docker's results. */
export function loadBuildCases(): { cases: BuildCase[]; expected: ExpectedResults } {
  const index = JSON.parse(fs.readFileSync(path.join(casesDir, 'index.json'), 'utf8')) as { cases: BuildCase[] };
  const expected = JSON.parse(fs.readFileSync(path.join(casesDir, 'expected-docker.json'), 'utf8')) as ExpectedResults;
  return { cases: index.cases, expected };
}

/**
 * A copy of the shared contexts may store git symlinks as small files holding the link target (a checkout with
 * core.symlinks=false, or a plain file copy). Recognise them: a file without whitespace whose content is a relative
 * path starting with '../' that names an existing entry next to it.
 */
function storedLinkTarget(p: string): string | undefined {
  const st = fs.lstatSync(p);
  if (!st.isFile() || st.size > 255) return undefined;
  const target = fs.readFileSync(p, 'utf8');
  if (!target.startsWith('../') || /\s/.test(target)) return undefined;
  if (!fs.existsSync(path.resolve(path.dirname(p), target))) return undefined;
  return target;
}

/**
 * Copy one shared tree into `to` as git checks it out: directories 0755, files 0644, symlinks created verbatim (the
 * same target text, whether the source holds a real link or a small file with the target), upstream's test date as
 * mtime on everything (`lutimes` for links). Nothing is ever written through a link, so the shared tree (read-only
 * reference data) cannot be touched.
 */
function copyCaseTree(from: string, to: string): void {
  const st = fs.lstatSync(from);
  if (st.isSymbolicLink()) {
    fs.symlinkSync(fs.readlinkSync(from), to);
    fs.lutimesSync(to, TEST_DATE, TEST_DATE);
  } else if (st.isDirectory()) {
    fs.mkdirSync(to, { mode: 0o755 });
    for (const n of fs.readdirSync(from)) copyCaseTree(path.join(from, n), path.join(to, n));
    fs.chmodSync(to, 0o755);
    fs.utimesSync(to, TEST_DATE, TEST_DATE);
  } else if (st.isFile()) {
    const target = storedLinkTarget(from);
    if (target !== undefined) {
      fs.symlinkSync(target, to);
      fs.lutimesSync(to, TEST_DATE, TEST_DATE);
      return;
    }
    fs.copyFileSync(from, to);
    fs.chmodSync(to, 0o644);
    fs.utimesSync(to, TEST_DATE, TEST_DATE);
  }
}

/**
 * Copy a case's context to `<work>/<case>/context` as git checks it out (0644 files, 0755 dirs, symlinks verbatim,
 * upstream's test date as mtime), then apply the case's setup steps in order. Returns the context directory.
 * `from` (default: the shared case directory) lets a test lay the shared data out another way.
 */
export async function prepareCaseContext(c: BuildCase, work: string, from: string = path.join(casesDir, c.case)): Promise<string> {
  const ctx = path.join(work, c.case, 'context');
  fs.mkdirSync(path.dirname(ctx), { recursive: true });
  copyCaseTree(from, ctx);
  for (const op of c.setup ?? []) await applySetup(ctx, op);
  return ctx;
}

async function applySetup(ctx: string, op: SetupOp): Promise<void> {
  const p = path.join(ctx, op.path);
  const mode = op.mode ? parseInt(op.mode, 8) : undefined;
  if (op.op === 'mkdir') fs.mkdirSync(p, { recursive: true });
  else if (op.op === 'write_file') {
    fs.mkdirSync(path.dirname(p), { recursive: true });
    fs.writeFileSync(p, op.content ?? '');
  } else fs.writeFileSync(p, await makeTar(op.entries ?? []));
  // owner first: chown clears setuid/setgid bits
  if (op.uid !== undefined) fs.lchownSync(p, op.uid, op.gid ?? op.uid);
  if (mode !== undefined) fs.chmodSync(p, op.op === 'write_tar' || op.chmod_after_create ? mode : mode & ~0o022);
  for (const [k, v] of Object.entries(op.xattrs ?? {})) execFileSync('setfattr', ['-n', k, '-v', v, p]);
  if (op.mtime !== undefined) fs.utimesSync(p, op.mtime, op.mtime);
}

async function makeTar(entries: NonNullable<SetupOp['entries']>): Promise<Buffer> {
  const pack = tarStream.pack();
  const chunks: Buffer[] = [];
  pack.on('data', (d: unknown) => {
    chunks.push(d as Buffer);
  });
  const ended = new Promise<void>((resolve) => pack.on('end', () => resolve()));
  for (const e of entries) {
    const header = {
      name: e.name,
      type: e.type === 'dir' ? ('directory' as const) : ('file' as const),
      mode: parseInt(e.mode, 8),
      uid: e.uid,
      gid: e.gid,
      mtime: new Date(e.mtime * 1000),
      pax: e.pax_records,
    };
    if (e.type === 'dir') pack.entry(header);
    else pack.entry(header, e.content ?? '');
  }
  pack.finalize();
  await ended;
  return Buffer.concat(chunks);
}

/** Every entry below `root` in expected-docker.json's shape, keyed by '/'-separated relative path. */
export function snapshotDir(root: string): Record<string, FsEntry> {
  const out: Record<string, FsEntry> = {};
  const walk = (rel: string): void => {
    for (const name of fs.readdirSync(path.join(root, rel))) {
      const r = rel === '' ? name : `${rel}/${name}`;
      const p = path.join(root, r);
      const st = fs.lstatSync(p);
      const type = st.isDirectory() ? 'dir' : st.isSymbolicLink() ? 'symlink' : st.isFile() ? 'reg' : 'other';
      out[r] = {
        type,
        mode: st.mode & 0o7777,
        uid: st.uid,
        gid: st.gid,
        size: type === 'reg' ? st.size : null,
        sha256: type === 'reg' ? crypto.createHash('sha256').update(fs.readFileSync(p)).digest('hex') : null,
        link: type === 'symlink' ? fs.readlinkSync(p) : null,
        mtime: Math.floor(st.mtimeMs / 1000),
      };
      if (type === 'dir') walk(r);
    }
  };
  walk('');
  return out;
}

/** The case's `fs_skip` entries as `path:field` ('*' for the whole entry). */
export function fsSkips(c: BuildCase): Set<string> {
  const s = new Set<string>();
  for (const f of c.fs_skip ?? []) {
    const tokens = f.split(':');
    const field = tokens.length % 2 === 1 ? tokens.pop()! : '*';
    s.add(`${tokens.filter((_, i) => i % 2 === 1).join('/')}:${field}`);
  }
  return s;
}

export interface CompareFsOptions {
  /** paths to compare (default: every path of `actual` and `expected`) */
  paths?: { actual: Iterable<string> };
  /** whether to compare this entry's mtime (default: non-directories only) */
  compareMtime?: (p: string, want: FsEntry) => boolean;
  /** fields not to compare for this path (e.g. content the test supplied itself) */
  ignoreFields?: (p: string) => ReadonlyArray<keyof FsEntry>;
}

/**
 * Differences between a tree and Docker's: missing and extra paths, and per-field mismatches, with the case's
 * `fs_skip` applied. `actual` is the whole tree to look entries up in; `opts.paths.actual` (default: all of
 * `actual`) are the paths that must each be in `expected`.
 */
export function compareFs(c: BuildCase, actual: Record<string, FsEntry>, expected: Record<string, FsEntry>, opts: CompareFsOptions = {}): string[] {
  const problems: string[] = [];
  const skip = fsSkips(c);
  const compareMtime = opts.compareMtime ?? ((_p: string, want: FsEntry) => want.type !== 'dir');
  for (const p of Object.keys(expected)) if (!(p in actual) && !skip.has(`${p}:*`)) problems.push(`missing ${p}`);
  for (const p of opts.paths?.actual ?? Object.keys(actual)) if (!(p in expected) && !skip.has(`${p}:*`)) problems.push(`extra ${p}`);
  for (const [p, want] of Object.entries(expected)) {
    const got = actual[p];
    if (!got || skip.has(`${p}:*`)) continue;
    const ignored = opts.ignoreFields?.(p) ?? [];
    for (const k of ['type', 'mode', 'uid', 'gid', 'size', 'sha256', 'link', 'mtime'] as const) {
      if (ignored.includes(k)) continue;
      if (k === 'mtime' && (skip.has(`${p}:mtime`) || !compareMtime(p, want))) continue;
      if (got[k] !== want[k]) problems.push(`${p}: ${k} ${String(got[k])} != docker ${String(want[k])}`);
    }
  }
  return problems;
}

/** A .dockerignore matcher with the parts these helpers use (kiln's one matcher, src/context). */
export interface CaseMatcher {
  matchesOrParentMatches(p: string): boolean;
  readonly hasExclusions: boolean;
  /** exception patterns without their '!' */
  readonly exceptions: readonly string[];
}

/** The case context's .dockerignore as a matcher (patterns cleaned as Docker reads them), if it has one. */
export function ignoreMatcher(ctx: string): CaseMatcher | undefined {
  const file = path.join(ctx, '.dockerignore');
  if (!fs.existsSync(file)) return undefined;
  const patterns: string[] = [];
  for (let line of fs.readFileSync(file, 'utf8').replace(/^\uFEFF/, '').split('\n')) {
    if (line.startsWith('#')) continue;
    line = line.trim();
    if (line === '') continue;
    let neg = '';
    if (line.startsWith('!')) {
      neg = '!';
      line = line.slice(1).trim();
    }
    line = path.posix.normalize(line);
    if (line.startsWith('/')) line = line.slice(1);
    patterns.push(neg + line);
  }
  const m = createPatternMatcher(patterns);
  const exceptions = m.patterns.filter((p) => p.startsWith('!')).map((p) => p.slice(1));
  return { matchesOrParentMatches: (p) => m.matches(p), hasExclusions: exceptions.length > 0, exceptions };
}

/**
 * What Docker 20.10's context transfer left out (the expected results come from it): a path is ignored when the
 * patterns match it, and also everything below an ignored directory unless an exception pattern's text starts with
 * that directory's path (its walker skipped such directories; newer fsutil walks into them when an exception has
 * glob characters).
 */
export function transferredBy2010(pm: CaseMatcher): (p: string) => boolean {
  const exceptions = pm.exceptions.map((p) => p + '/');
  return (p: string): boolean => {
    if (pm.matchesOrParentMatches(p)) return true;
    const parts = p.split('/');
    for (let i = 1; i < parts.length; i++) {
      const dir = parts.slice(0, i).join('/');
      if (pm.matchesOrParentMatches(dir) && !exceptions.some((e) => e.startsWith(dir + '/'))) return true;
    }
    return false;
  };
}

/**
 * Context paths Docker 20.10 (which recorded the expected results) did not send but current BuildKit, and kiln,
 * do: entries re-included by an exception pattern below a directory that 20.10's walker skipped. Empty when the
 * two agree for this context.
 */
export function pathsOnlyNewerDockerSends(ctx: string): string[] {
  const pm = ignoreMatcher(ctx);
  if (!pm || !pm.hasExclusions) return [];
  const by2010 = transferredBy2010(pm);
  const out: string[] = [];
  const walk = (rel: string): void => {
    for (const name of fs.readdirSync(path.join(ctx, rel))) {
      const r = rel === '' ? name : `${rel}/${name}`;
      if (!pm.matchesOrParentMatches(r) && by2010(r)) out.push(r);
      if (fs.lstatSync(path.join(ctx, r)).isDirectory()) walk(r);
    }
  };
  walk('');
  return out;
}
