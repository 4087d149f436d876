import { createHash } from 'node:crypto';
import path from 'node:path';
import { BuildError, DockerfileError } from '../errors/index.js';
import type { CopyOp, Vertex } from '../graph/index.js';
import type { RunContext } from '../solver/index.js';
import type { ActiveSnapshot } from '../cache/index.js';
import { trace } from '../progress/index.js';
import { resolveSources, type ResolvedSources, type SourceEntry } from '../context/index.js';
import { archiveContentDigest, copyInto } from './file/index.js';
import { resolveChown } from './users.js';
import { watchOf, withLocalContext, type OpsOptions } from './types.js';
import { copyUrlSources, isUrlSource, urlKeyInputs, withUrlInputs } from './url-sources.js';
import { loadSourceDigest, saveSourceDigest } from './source-digests.js';
import { commitStep, type OpEnv, type StepOutput } from './op-env.js';

/** Resolve a COPY/ADD's local sources under `root` (the context, or a mounted stage). */
function resolveCopySources(o: OpsOptions, op: CopyOp, root: string, signal: AbortSignal): Promise<ResolvedSources> {
  const fromContext = op.from === 'context';
  const lo = withLocalContext(o, op.context);
  return resolveSources({
    root,
    sources: op.sources.filter((x) => !(op.add && fromContext && isUrlSource(x))),
    inlineCount: op.inline.length + (op.add && fromContext ? op.sources.filter(isUrlSource).length : 0),
    ...(fromContext ? { isIgnored: lo.isIgnored, ignoreHasExceptions: lo.ignorePatterns.some((p) => p.startsWith('!')), statCache: o.statCache, ...watchOf(lo) } : {}),
    excludes: op.excludes,
    parents: op.parents,
    followSourceSymlinks: true,
    // context files are owned by 0:0 in the image; a stage's owners are kept unless --chown
    keepOwnership: !fromContext && op.chown === '',
    ...(op.add ? { archiveDigest: archiveContentDigest } : {}),
    command: op.add ? 'ADD' : 'COPY',
    signal,
  });
}

/** COPY/ADD: sources from the context, a stage or URLs copied over the parent's layers (none with --link). */
export async function runCopy(env: OpEnv, v: Vertex, op: CopyOp, ctx: RunContext): Promise<StepOutput> {
  const { o, resolvedSources } = env;
  const snap = await o.cache.mount(op.link ? [] : ctx.parent?.layers ?? []);
  let srcSnap: ActiveSnapshot | undefined;
  try {
    let srcRoot = withLocalContext(o, op.context).contextDir;
    if (op.from !== 'context') {
      const dep = ctx.deps.get(op.from.vertex)!;
      srcSnap = await o.cache.mount(dep.layers);
      srcRoot = srcSnap.mountpoint;
    }
    let chown: { uid: number; gid: number } | undefined;
    if (op.chown) {
      // names resolve against the image being built on, even for --link
      let chownRoot = snap.mountpoint;
      let tmpSnap: ActiveSnapshot | undefined;
      if (op.link && ctx.parent) {
        tmpSnap = await o.cache.mount(ctx.parent.layers);
        chownRoot = tmpSnap.mountpoint;
      }
      try {
        chown = resolveChown(op.chown, chownRoot);
      } catch (err) {
        throw new DockerfileError((err as Error).message, v.location);
      } finally {
        await tmpSnap?.release();
      }
    }
    const tCopy = Date.now();
    const urls = op.add && op.from === 'context' ? op.sources.filter(isUrlSource) : [];
    const localSources = urls.length > 0 ? op.sources.filter((x) => !isUrlSource(x)) : op.sources;
    const resolved = resolvedSources.get(v.id) ?? (localSources.length > 0 || op.inline.length > 0 ? await resolveCopySources(o, op, srcRoot, ctx.signal) : undefined);
    resolvedSources.delete(v.id);
    try {
      if (urls.length > 0 && op.sources.length + op.inline.length > 1 && !/\/\.?$/.test(op.dest)) {
        throw new BuildError('ERR_KILN_COPY_DEST', 'When using ADD with more than one source file, the destination must be a directory and end with a /');
      }
      if (localSources.length > 0 || op.inline.length > 0 || urls.length === 0) await copyInto({
        srcRoot,
        sources: localSources,
        inline: op.inline,
        destRoot: snap.mountpoint,
        dest: op.dest,
        workdir: op.workdir,
        ...(chown ? { chown } : {}),
        ...(op.chmod ? { chmod: op.chmod } : {}),
        ...(op.from === 'context' ? {} : { preserveOwnership: true }),
        unpackArchives: op.add,
        ...(resolved ? { resolved } : {}),
        checkUnchanged: op.from === 'context',
        signal: ctx.signal,
      });
      if (urls.length > 0) {
        const common = { destRoot: snap.mountpoint, dest: op.dest, workdir: op.workdir, ...(chown ? { chown } : {}), ...(op.chmod ? { chmod: op.chmod } : {}) };
        await copyUrlSources({ urls, checksum: op.checksum, tmpRoot: path.join(o.stateDir, 'tmp'), signal: ctx.signal, ...common });
      }
    } catch (err) {
      if (err instanceof DockerfileError || !v.location) throw err;
      const e = err as BuildError;
      if (e.code) throw new DockerfileError(e.message, v.location, { code: e.code, cause: err });
      throw err;
    }
    trace(`copy ${op.sources.join(' ')}: ${Date.now() - tCopy} ms`);
    await srcSnap?.release();
    srcSnap = undefined;
    return await commitStep(env, snap, ctx.signal, op.from === 'context');
  } catch (err) {
    await snap.release();
    throw err;
  } finally {
    await srcSnap?.release();
  }
}

/**
 * COPY --from a stage or image keys on the content of the copied paths only (BuildKit's selector checksum): a stage
 * change elsewhere keeps the COPY cached. The digest of one (stage output, selector) pair never changes, so it is
 * remembered under the state dir and the stage is mounted and read only the first time.
 */
async function stageSourceInputs(env: OpEnv, v: Vertex, op: CopyOp, ctx: RunContext): Promise<Record<string, unknown>> {
  const { o } = env;
  if (op.from === 'context') return {};
  const dep = ctx.deps.get(op.from.vertex)!;
  const selector = { outputId: dep.outputId, sources: op.sources, inline: op.inline.length, excludes: op.excludes, parents: op.parents, owners: op.chown === '', add: op.add };
  const known = loadSourceDigest(o.stateDir, selector);
  if (known) return { digest: known, coveredDeps: [op.from.vertex] };
  const src = await o.cache.mount(dep.layers);
  try {
    const r = await resolveCopySources(o, op, src.mountpoint, ctx.signal);
    env.resolvedSources.set(v.id, r);
    saveSourceDigest(o.stateDir, selector, r.digest);
    return { digest: r.digest, coveredDeps: [op.from.vertex], ...explainFiles(r) };
  } finally {
    await src.release();
  }
}

/** The content a COPY/ADD's key reads: its sources' digest (context, stage selector, URLs) and per-file detail. */
export async function copyContentInputs(env: OpEnv, v: Vertex, op: CopyOp, ctx: RunContext): Promise<Record<string, unknown>> {
  const { o } = env;
  try {
    if (op.from !== 'context') return await stageSourceInputs(env, v, op, ctx);
    const urls = op.add ? op.sources.filter(isUrlSource) : [];
    const withUrls = async (content: Record<string, unknown>): Promise<Record<string, unknown>> =>
      urls.length === 0 ? content : withUrlInputs(content, await urlKeyInputs({ urls, checksum: op.checksum, tmpRoot: path.join(o.stateDir, 'tmp'), signal: ctx.signal }));
    if (op.sources.length === urls.length) return await withUrls({});
    const t0 = Date.now();
    const r = await resolveCopySources(o, op, withLocalContext(o, op.context).contextDir, ctx.signal);
    trace(`sources ${op.sources.join(' ')}: ${r.entryCount} entries, ${r.recalled ? 'recalled (not walked)' : r.patched > 0 ? `${r.patched} changed entries read (not walked)` : 'walked'}, ${r.filesHashed} files hashed, ${Date.now() - t0} ms`);
    env.resolvedSources.set(v.id, r);
    return await withUrls({ digest: r.digest, ...explainFiles(r) });
  } catch (err) {
    const e = err as BuildError;
    if (v.location && e.code && !(err instanceof DockerfileError)) throw new DockerfileError(e.message, v.location, { code: e.code, cause: err });
    throw err;
  }
}

const TYPE_BITS: Record<SourceEntry['type'], number> = { file: 0o100000, dir: 0o040000, symlink: 0o120000, fifo: 0o010000, char: 0o020000, block: 0o060000 };

/** What a miss explanation shows of an entry's content: the file's digest, a link target's digest. */
function entryDigest(e: SourceEntry): string {
  if (e.digest) return `sha256:${e.digest}`;
  if (e.linkTarget !== undefined) return `sha256:${createHash('sha256').update(e.linkTarget).digest('hex')}`;
  return '';
}

/** Per-file detail for explaining a miss (bounded). */
function explainFiles(r: ResolvedSources): Record<string, unknown> {
  if (r.entryCount > 2000) return { fileCount: r.entryCount };
  const files: Array<[string, string, number]> = [];
  for (const u of r.units) {
    if (u.archive) files.push([u.matched, u.archive.digest, 0]);
    else for (const e of u.entries) files.push([e.rel === '' ? u.matched || '.' : u.matched ? `${u.matched}/${e.rel}` : e.rel, entryDigest(e), TYPE_BITS[e.type] | e.perm]);
  }
  return { files };
}

