import { randomBytes } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { BuildError, DockerfileError } from '../errors/index.js';
import { canonicalJson, sha256, type Digest } from '../oci/index.js';
import type { ExecOp, MountDef, Vertex } from '../graph/index.js';
import type { ExecMount } from '../executor/index.js';
import type { RunContext } from '../solver/index.js';
import { resolveInside, resolveSources, walkContext, type ContextEntry } from '../context/index.js';
import { lockCacheMount } from '../cache/index.js';
import { writeSecretFile } from './secret-mounts.js';
import { watchOf, withLocalContext, type OpsOptions } from './types.js';

/** Options of {@link prepareExecMounts}. */
export interface PrepareExecMountsOptions {
  o: OpsOptions;
  vertex: Vertex;
  op: ExecOp;
  ctx: RunContext;
  /** mounts `source` of another vertex's output; the caller's cleanups release it */
  mountVertex(vertexId: string): Promise<{ root: string; release(): Promise<void> }>;
  /** filled as resources are taken, so the caller can undo them even when this throws */
  cleanups: Array<() => Promise<void>>;
}

/**
 * Turn a RUN's `--mount`s into executor mounts (and secret env vars), with BuildKit's semantics: cache mounts from the
 * state directory (locked/private/shared), binds from the context (`.dockerignore` applied, symlinks kept inside) or
 * another stage (read-only; `rw` writes go to a throwaway copy), secrets as a file on a tmpfs of kiln's own or an env var, tmpfs.
 */
export async function prepareExecMounts(opts: PrepareExecMountsOptions): Promise<{ mounts: ExecMount[]; env: string[] }> {
  const { o, op, ctx, cleanups } = opts;
  const mounts: ExecMount[] = [];
  const env = [...op.env];
  for (const m of op.mounts) {
    switch (m.type) {
      case 'cache':
        mounts.push(await cacheMount(opts, m));
        break;
      case 'tmpfs':
        mounts.push({ type: 'tmpfs', destination: m.target, options: m.size ? [`size=${m.size}`] : [] });
        break;
      case 'secret': {
        const value = await secretValue(o, m);
        if (value === undefined) break;
        if (m.env) env.push(`${m.env}=${value.toString('utf8')}`);
        if (m.target) {
          // on a tmpfs of kiln's own: the secret never touches the disk
          const secret = await writeSecretFile({ tmpDir: path.join(o.stateDir, 'tmp'), value, uid: m.uid ?? 0, gid: m.gid ?? 0, mode: m.mode ?? 0o400 });
          cleanups.push(secret.release);
          mounts.push({ type: 'bind', source: secret.file, destination: m.target, readonly: true });
        }
        break;
      }
      case 'bind': {
        let src: string;
        if (m.fromVertex) {
          const mv = await opts.mountVertex(m.fromVertex);
          cleanups.push(mv.release);
          src = resolveInside(mv.root, m.source ?? '/', { followSymlinks: true });
        } else {
          src = await contextBindSource(opts, m);
        }
        if (m.readonly === false) {
          // rw: the step may write, but nothing it writes survives the step
          const dir = tmpPath(o, 'bind');
          cleanups.push(() => fsp.rm(dir, { recursive: true, force: true }));
          await fsp.cp(src, dir, { recursive: true, verbatimSymlinks: true, preserveTimestamps: true });
          src = dir;
        }
        mounts.push({ type: 'bind', source: src, destination: m.target, readonly: m.readonly !== false });
        break;
      }
      default:
        throw new DockerfileError(`RUN --mount=type=${m.type} is not supported by kiln`, opts.vertex.location, { code: 'ERR_KILN_NOT_SUPPORTED' });
    }
    ctx.signal.throwIfAborted();
  }
  return { mounts, env };
}

function tmpPath(o: OpsOptions, kind: string): string {
  return path.join(o.stateDir, 'tmp', `${kind}-${randomBytes(8).toString('hex')}`);
}

async function cacheMount(opts: PrepareExecMountsOptions, m: MountDef): Promise<ExecMount> {
  const { o, ctx } = opts;
  let seedKey: string | undefined;
  let seed: ((dir: string) => Promise<void>) | undefined;
  if (m.fromVertex) {
    const dep = ctx.deps.get(m.fromVertex);
    if (!dep) throw new Error(`missing dependency ${m.fromVertex}`);
    seedKey = dep.outputId;
    seed = async (dir) => {
      const mv = await opts.mountVertex(m.fromVertex!);
      try {
        const from = resolveInside(mv.root, m.source ?? '/', { followSymlinks: true });
        const st = await fsp.stat(from).catch(() => undefined);
        if (st?.isDirectory()) await fsp.cp(from, dir, { recursive: true, verbatimSymlinks: true, preserveTimestamps: true, force: true });
      } finally {
        await mv.release();
      }
    };
  }
  const cm = await lockCacheMount({
    stateDir: o.stateDir,
    def: m,
    signal: ctx.signal,
    ...(seedKey ? { seedKey } : {}),
    ...(seed ? { seed } : {}),
    ...(o.buildId ? { buildId: o.buildId } : {}),
    ...(o.onCacheMount ? { onOpen: o.onCacheMount } : {}),
  });
  opts.cleanups.push(cm.release);
  return { type: 'bind', source: cm.dir, destination: m.target, readonly: m.readonly === true };
}

async function secretValue(o: OpsOptions, m: MountDef): Promise<Buffer | undefined> {
  const s = o.secrets.get(m.id ?? '');
  let value: Buffer | undefined;
  if (s?.file) {
    value = await fsp.readFile(s.file).catch((err: NodeJS.ErrnoException) => {
      throw new BuildError('ERR_KILN_SECRET_NOT_FOUND', `secret "${m.id}": cannot read its source file (${err.code ?? err.message})`);
    });
  } else if (s?.env !== undefined && process.env[s.env] !== undefined) value = Buffer.from(process.env[s.env]!);
  if (value === undefined && m.required) throw new BuildError('ERR_KILN_SECRET_NOT_FOUND', `secret "${m.id}" is required but was not provided`);
  return value;
}

/**
 * The host path a context bind mounts: symlinks resolved inside the context, and `.dockerignore`d files left out (a
 * filtered copy, hardlinked where possible, when anything under the source is ignored).
 */
async function contextBindSource(opts: PrepareExecMountsOptions, m: MountDef): Promise<string> {
  const { vertex } = opts;
  const o = withLocalContext(opts.o, m.context);
  let src: string;
  try {
    src = resolveInside(o.contextDir, m.source ?? '.', { followSymlinks: true });
  } catch (err) {
    const e = err as BuildError;
    throw new DockerfileError(e.message, vertex.location, { code: e.code ?? 'ERR_KILN_CONTEXT_ESCAPE', cause: err });
  }
  const st = await fsp.lstat(src).catch(() => undefined);
  const rel = path.relative(o.contextDir, src).split(path.sep).join('/') || '.';
  if (!st || (rel !== '.' && o.isIgnored(rel))) {
    throw new DockerfileError(`RUN --mount=type=bind: source "${m.source ?? '.'}" is not in the build context`, vertex.location, { code: 'ERR_KILN_CONTEXT_NOT_FOUND' });
  }
  if (!st.isDirectory() || o.ignorePatterns.length === 0) return src;
  const include = rel === '.' ? {} : { includePatterns: [rel] };
  const all = await walkContext({ dir: o.contextDir, ...include, signal: opts.ctx.signal });
  const kept = await walkContext({ dir: o.contextDir, ...include, excludePatterns: o.ignorePatterns, signal: opts.ctx.signal });
  if (kept.length === all.length) return src;
  const dir = tmpPath(o, 'bindctx');
  opts.cleanups.push(() => fsp.rm(dir, { recursive: true, force: true }));
  await fsp.mkdir(dir, { recursive: true });
  await materialize({ contextDir: o.contextDir, rel, entries: kept, dest: dir, hardlink: m.readonly !== false });
  return dir;
}

/** Recreate the kept entries under `dest` (files hardlinked when allowed and possible, else copied). */
async function materialize(opts: { contextDir: string; rel: string; entries: ContextEntry[]; dest: string; hardlink: boolean }): Promise<void> {
  const prefix = opts.rel === '.' ? '' : `${opts.rel}/`;
  const dirs: Array<{ p: string; mode: number }> = [];
  for (const e of opts.entries) {
    if (e.path !== opts.rel && !e.path.startsWith(prefix)) continue;
    const sub = e.path === opts.rel ? '' : e.path.slice(prefix.length);
    const to = path.join(opts.dest, sub);
    const from = path.join(opts.contextDir, e.path);
    if (e.type === 'dir') {
      await fsp.mkdir(to, { recursive: true });
      dirs.push({ p: to, mode: e.mode & 0o7777 });
      continue;
    }
    await fsp.mkdir(path.dirname(to), { recursive: true });
    if (e.type === 'symlink') await fsp.symlink(e.linkTarget ?? '', to);
    else if (e.type === 'file') {
      if (!opts.hardlink || !(await fsp.link(from, to).then(() => true, () => false))) await fsp.cp(from, to, { preserveTimestamps: true });
    }
  }
  for (const d of dirs.reverse()) await fsp.chmod(d.p, d.mode);
}

/**
 * Cache-key content for a RUN's bind mounts from the build context: a checksum of exactly the files each one shows
 * (as COPY does), so a changed file reruns the step and a touched one does not.
 */
export async function bindMountContentInputs(opts: { o: OpsOptions; op: ExecOp; location?: Vertex['location']; signal?: AbortSignal }): Promise<Record<string, unknown>> {
  const binds = opts.op.mounts.filter((m) => m.type === 'bind' && !m.fromVertex);
  if (binds.length === 0) return {};
  const list: Array<{ target: string; source: string; digest: string }> = [];
  for (const b of binds) {
    const source = b.source && b.source !== '/' ? b.source.replace(/^\/+/, '') : '.';
    const lo = withLocalContext(opts.o, b.context);
    let r;
    try {
      // the same resolution as COPY's (one set of path rules), owners included: a bind shows them
      r = await resolveSources({
        root: lo.contextDir,
        sources: [source],
        isIgnored: lo.isIgnored,
        ignoreHasExceptions: lo.ignorePatterns.some((p) => p.startsWith('!')),
        statCache: opts.o.statCache,
        ...watchOf(lo),
        keepOwnership: true,
        ...(opts.signal ? { signal: opts.signal } : {}),
      });
    } catch (err) {
      const e = err as BuildError;
      if (opts.location && e.code && !(err instanceof DockerfileError)) {
        const msg = e.code === 'ERR_KILN_CONTEXT_NOT_FOUND' ? `source "${b.source ?? '.'}" is not in the build context` : e.message;
        throw new DockerfileError(`RUN --mount=type=bind: ${msg}`, opts.location, { code: e.code, cause: err });
      }
      throw err;
    }
    list.push({ target: b.target, source, digest: r.digest });
  }
  return { digest: sha256(canonicalJson(list)) as Digest, binds: list };
}
