import { createHash } from 'node:crypto';
import { existsSync, promises as fsp, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { BuildError, DockerfileError, ExecError, isDiskFull, noSpaceError, whileWriting } from '../errors/index.js';
import type { CopyOp, ExecOp, MkdirOp, Vertex } from '../graph/index.js';
import type { Digest } from '../oci/index.js';
import type { OpRunner, RunContext } from '../solver/index.js';
import { dropCopyUps, type ActiveSnapshot } from '../snapshot/index.js';
import { writeLayer } from '../layer/index.js';
import { unpackLayer } from './unpack.js';
import { resolveSources, type ResolvedSources, type SourceEntry } from '../context/index.js';
import { archiveContentDigest, copyInto } from './file/index.js';
import { resolveChown } from './users.js';
import { withLocalContext, type BuildLimits, type OpsOptions } from './types.js';
import type { ExecLimits, ExecResult } from '../executor/index.js';
import { bindMountContentInputs, prepareExecMounts } from './exec-mounts.js';
import { copyUrlSources, isUrlSource, urlKeyInputs, withUrlInputs } from './url-sources.js';
import { loadSourceDigest, saveSourceDigest } from './source-digests.js';

const LAST_LINES = 12;

/** KILN_TRACE=1 prints where a step's time goes. */
function trace(msg: string): void {
  if (process.env.KILN_TRACE) process.stderr.write(`[trace] ${msg}\n`);
}

/** Executes graph vertices for real: overlay snapshots, runc, file copies, layer tars. */
export function createOpRunner(o: OpsOptions): OpRunner & { ensureSnapshots(layers: Digest[]): Promise<number[]> } {
  const unpacking = new Map<string, Promise<number>>();
  /** each COPY/ADD's sources, resolved once for its key and handed to its copy */
  const resolvedSources = new Map<string, ResolvedSources>();
  /** uncompressed bytes of the layers this build wrote so far (counted against `limits.diskBytes`) */
  let diskUsedBytes = 0;

  /** Resolve a COPY/ADD's local sources under `root` (the context, or a mounted stage). */
  function resolveCopySources(op: CopyOp, root: string, signal: AbortSignal): Promise<ResolvedSources> {
    const fromContext = op.from === 'context';
    const lo = withLocalContext(o, op.context);
    return resolveSources({
      root,
      sources: op.sources.filter((x) => !(op.add && fromContext && isUrlSource(x))),
      inlineCount: op.inline.length + (op.add && fromContext ? op.sources.filter(isUrlSource).length : 0),
      ...(fromContext ? { isIgnored: lo.isIgnored, ignoreHasExceptions: lo.ignorePatterns.some((p) => p.startsWith('!')), statCache: o.statCache } : {}),
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

  /** The snapshot id holding the unpacked layer, unpacking the blob if needed. */
  function ensureSnapshot(diffId: Digest): Promise<number> {
    let p = unpacking.get(diffId);
    if (!p) {
      p = unpackLayer(o, diffId);
      unpacking.set(diffId, p);
      p.catch(() => unpacking.delete(diffId));
    }
    return p;
  }

  async function ensureSnapshots(layers: Digest[]): Promise<number[]> {
    return Promise.all(layers.map(ensureSnapshot));
  }

  /** Mount a writable overlay over the given layers. */
  async function mountOver(layers: Digest[]): Promise<ActiveSnapshot> {
    // the same layer twice (identical steps) is one snapshot: overlayfs refuses a lowerdir listed twice (ELOOP),
    // and only its topmost occurrence matters
    const lowers = (await ensureSnapshots(layers)).filter((id, i, all) => all.indexOf(id, i + 1) < 0);
    const snap = await o.snapshots.prepare({ lowers });
    try {
      await snap.mount();
    } catch (err) {
      await snap.release();
      throw err;
    }
    return snap;
  }

  /** Turn the active snapshot's changes into a layer (or null when nothing changed). */
  async function commitLayer(snap: ActiveSnapshot, signal: AbortSignal, contextCopy = false): Promise<{ diffId: Digest; contentId: string } | null> {
    await snap.unmount();
    dropCopyUps(snap.upperDir, snap.lowerDirs);
    if (readdirSync(snap.upperDir).length === 0) {
      await snap.release();
      return null;
    }
    const tLayer = Date.now();
    const info = await writeLayer({
      dir: snap.upperDir,
      ingester: o.store,
      compression: 'gzip',
      overlay: true,
      // gzip members are cached only for context COPY steps, whose reruns mostly repeat the last result
      // other layers (RUN output) are compressed as members in parallel on the thread pool: every core, not one
      // (bench/gzip-parallel.ts: 690 MB of /usr/lib, 36 s -> 23 s with the second core free, the same when it is busy)
      ...(contextCopy ? { chunkCache: { dir: path.join(o.stateDir, 'layer-chunks') } } : { parallelGzip: true }),
      signal,
      ...(o.sourceDateEpoch !== undefined ? { sourceDateEpoch: o.sourceDateEpoch } : {}),
    }).catch((err: unknown) => {
      throw whileWriting(err, { what: 'a layer blob', where: o.store.root });
    });
    trace(`layer ${info.entries} entries, ${info.uncompressedSize} bytes: ${Date.now() - tLayer} ms`);
    diskUsedBytes += info.uncompressedSize;
    // content identity without mtimes: a rerun that writes the same files keeps later steps cached (early cutoff)
    const contentId = info.contentId;
    const existing = o.db.layers.getLayer(info.diffId);
    if (existing?.snapshotId != null && o.db.layers.getSnapshot(existing.snapshotId)?.state === 'committed') {
      // the same layer is already unpacked: keep that one
      o.db.layers.touchLayer(info.diffId);
      await snap.release();
      return { diffId: info.diffId, contentId };
    }
    const id = await snap.commit();
    o.db.transaction(() => {
      o.db.layers.commitSnapshot(id, info.diffId);
      o.db.layers.putLayer({ diffId: info.diffId, blob: info.digest, blobSize: info.size, mediaType: info.mediaType, contentId, snapshotId: id });
    });
    return { diffId: info.diffId, contentId };
  }

  async function runExec(v: Vertex, op: ExecOp, ctx: RunContext): Promise<{ diffId: Digest; contentId: string } | null> {
    const snap = await mountOver(ctx.parent?.layers ?? []);
    const cleanups: Array<() => Promise<void>> = [];
    try {
      const { mounts, env } = await prepareExecMounts({ o, vertex: v, op, ctx, cleanups, mountVertex: (id) => mountVertexOutput(id, ctx) });
      const last: string[] = [];
      let partial = '';
      const keep = (chunk: Buffer): void => {
        const text = partial + chunk.toString('utf8');
        const lines = text.split('\n');
        partial = lines.pop() ?? '';
        for (const l of lines) {
          last.push(l);
          if (last.length > LAST_LINES) last.shift();
        }
      };
      const res = await o.executor.run({
        rootfs: snap.mountpoint,
        args: op.args,
        env,
        cwd: op.cwd,
        user: op.user,
        mounts,
        network: op.network === 'default' ? (o.network ?? 'host') : op.network,
        ...(op.security === 'insecure' ? { insecure: true } : {}),
        ...(o.limits ? { limits: execLimits({ limits: o.limits, upperDir: snap.upperDir, used: diskUsedBytes }) } : {}),
        ...(o.ulimits ? { ulimits: o.ulimits } : {}),
        ...(o.extraHosts ? { extraHosts: o.extraHosts } : {}),
        ...(o.shmSizeBytes !== undefined ? { shmSizeBytes: o.shmSizeBytes } : {}),
        onStdout: (c) => {
          keep(c);
          ctx.log('stdout', c);
        },
        onStderr: (c) => {
          keep(c);
          ctx.log('stderr', c);
        },
        signal: ctx.signal,
      });
      if (partial) last.push(partial);
      if (res.stoppedBy) throw limitError({ v, limits: o.limits ?? {}, stoppedBy: res.stoppedBy });
      if (res.exitCode !== 0) {
        const where = v.location ? `${v.location.file}:${v.location.line}: ` : '';
        const cmd = op.args.length >= 3 && op.args[op.args.length - 2] === '-c' ? op.args[op.args.length - 1]! : JSON.stringify(op.args);
        const failed = new ExecError({
          message: `${where}${v.name.replace(/^\[[^\]]*\]\s*/, '')} did not complete successfully: exit code ${res.exitCode}`,
          exitCode: res.exitCode,
          command: cmd,
          lastOutput: last.slice(-LAST_LINES),
        });
        // the command failed because the state root's disk is full (checked before its upper dir is released)
        if (isDiskFull(snap.upperDir, 1024 * 1024)) throw noSpaceError({ what: `the output of ${failed.message.replace(/ did not complete successfully.*$/, '')} (it exited ${res.exitCode})`, where: o.stateDir, cause: failed });
        throw failed;
      }
      for (const c of cleanups.splice(0).reverse()) await c();
      return await commitLayer(snap, ctx.signal);
    } catch (err) {
      await snap.release();
      throw err;
    } finally {
      for (const c of cleanups.reverse()) await c().catch(() => undefined);
    }
  }

  /** Mount another vertex's output (read-only use) until `release`. */
  async function mountVertexOutput(vertexId: string, ctx: RunContext): Promise<{ root: string; release(): Promise<void> }> {
    const dep = ctx.deps.get(vertexId);
    if (!dep) throw new Error(`missing dependency ${vertexId}`);
    const snap = await mountOver(dep.layers);
    return { root: snap.mountpoint, release: () => snap.release() };
  }

  async function runCopy(v: Vertex, op: CopyOp, ctx: RunContext): Promise<{ diffId: Digest; contentId: string } | null> {
    const snap = await mountOver(op.link ? [] : ctx.parent?.layers ?? []);
    let srcSnap: ActiveSnapshot | undefined;
    try {
      let srcRoot = withLocalContext(o, op.context).contextDir;
      if (op.from !== 'context') {
        const dep = ctx.deps.get(op.from.vertex)!;
        srcSnap = await mountOver(dep.layers);
        srcRoot = srcSnap.mountpoint;
      }
      let chown: { uid: number; gid: number } | undefined;
      if (op.chown) {
        // names resolve against the image being built on, even for --link
        let chownRoot = snap.mountpoint;
        let tmpSnap: ActiveSnapshot | undefined;
        if (op.link && ctx.parent) {
          tmpSnap = await mountOver(ctx.parent.layers);
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
      const resolved = resolvedSources.get(v.id) ?? (localSources.length > 0 || op.inline.length > 0 ? await resolveCopySources(op, srcRoot, ctx.signal) : undefined);
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
      return await commitLayer(snap, ctx.signal, op.from === 'context');
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
  async function stageSourceInputs(v: Vertex, op: CopyOp, ctx: RunContext): Promise<Record<string, unknown>> {
    if (op.from === 'context') return {};
    const dep = ctx.deps.get(op.from.vertex)!;
    const selector = { outputId: dep.outputId, sources: op.sources, inline: op.inline.length, excludes: op.excludes, parents: op.parents, owners: op.chown === '', add: op.add };
    const known = loadSourceDigest(o.stateDir, selector);
    if (known) return { digest: known, coveredDeps: [op.from.vertex] };
    const src = await mountOver(dep.layers);
    try {
      const r = await resolveCopySources(op, src.mountpoint, ctx.signal);
      resolvedSources.set(v.id, r);
      saveSourceDigest(o.stateDir, selector, r.digest);
      return { digest: r.digest, coveredDeps: [op.from.vertex], ...explainFiles(r) };
    } finally {
      await src.release();
    }
  }

  async function runMkdir(op: MkdirOp, ctx: RunContext): Promise<{ diffId: Digest; contentId: string } | null> {
    const snap = await mountOver(ctx.parent?.layers ?? []);
    try {
      await mkdirInside(snap.mountpoint, op.path);
      return await commitLayer(snap, ctx.signal);
    } catch (err) {
      await snap.release();
      throw err;
    }
  }

  return {
    ensureSnapshots,
    async resolveSource(v) {
      if (v.op.type !== 'source') throw new Error('not a source');
      if (v.op.ref === 'scratch') return { manifest: 'scratch', layers: [] };
      const img = await o.loadImage(v.op.ref);
      return { manifest: img.manifestDigest, layers: img.config.rootfs.diff_ids };
    },
    async contentInputs(v, ctx) {
      if (v.op.type === 'exec') return bindMountContentInputs({ o, op: v.op, signal: ctx.signal, ...(v.location ? { location: v.location } : {}) });
      if (v.op.type !== 'copy') return {};
      const op = v.op;
      try {
        if (op.from !== 'context') return await stageSourceInputs(v, op, ctx);
        const urls = op.add ? op.sources.filter(isUrlSource) : [];
        const withUrls = async (content: Record<string, unknown>): Promise<Record<string, unknown>> =>
          urls.length === 0 ? content : withUrlInputs(content, await urlKeyInputs({ urls, checksum: op.checksum, tmpRoot: path.join(o.stateDir, 'tmp'), signal: ctx.signal }));
        if (op.sources.length === urls.length) return await withUrls({});
        const r = await resolveCopySources(op, withLocalContext(o, op.context).contextDir, ctx.signal);
        resolvedSources.set(v.id, r);
        return await withUrls({ digest: r.digest, ...explainFiles(r) });
      } catch (err) {
        const e = err as BuildError;
        if (v.location && e.code && !(err instanceof DockerfileError)) throw new DockerfileError(e.message, v.location, { code: e.code, cause: err });
        throw err;
      }
    },
    async execute(v, ctx) {
      try {
        switch (v.op.type) {
          case 'exec':
            return await runExec(v, v.op, ctx);
          case 'copy':
            return await runCopy(v, v.op, ctx);
          case 'mkdir':
            return await runMkdir(v.op, ctx);
          case 'meta':
            return null;
          case 'source':
            throw new Error('source vertices are resolved, not executed');
        }
      } catch (err) {
        // a full disk anywhere in a step (snapshot, copy, layer, record) is one sentence naming the step
        throw whileWriting(err, { what: `the output of ${JSON.stringify(v.name)}`, where: o.stateDir });
      }
    },
    async layerUsable(diffId) {
      const rec = o.db.layers.getLayer(diffId);
      if (!rec) return undefined;
      try {
        const st = statSync(o.store.path(rec.blob));
        if (st.size !== rec.blobSize) return undefined;
      } catch {
        return undefined;
      }
      o.db.layers.touchLayer(diffId);
      return { contentId: rec.contentId };
    },
  };
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

/** mkdir -p inside a root, resolving symlinks within the root. */
async function mkdirInside(root: string, p: string): Promise<void> {
  let cur = root;
  for (const seg of p.split('/').filter((s) => s && s !== '.')) {
    const next = path.join(cur, seg);
    let st;
    try {
      st = await fsp.lstat(next);
    } catch {
      await fsp.mkdir(next, { mode: 0o755 });
      cur = next;
      continue;
    }
    if (st.isSymbolicLink()) {
      const target = await fsp.readlink(next);
      const resolved = target.startsWith('/') ? path.join(root, target) : path.join(cur, target);
      const rel = path.relative(root, resolved);
      cur = rel.startsWith('..') ? root : path.join(root, rel);
      await mkdirInside(root, path.relative(root, cur));
      continue;
    }
    cur = next;
  }
}

/** A RUN's executor limits; the disk limit is what the build's earlier layers (`used` bytes) left of `diskBytes`. */
function execLimits(opts: { limits: BuildLimits; upperDir: string; used: number }): ExecLimits {
  const l = opts.limits;
  return {
    ...(l.memoryBytes ? { memoryBytes: l.memoryBytes } : {}),
    ...(l.pids ? { pids: l.pids } : {}),
    ...(l.cpuShares ? { cpuShares: l.cpuShares } : {}),
    ...(l.stepTimeoutMs ? { timeoutMs: l.stepTimeoutMs } : {}),
    ...(l.diskBytes ? { disk: { dir: opts.upperDir, maxBytes: Math.max(0, l.diskBytes - opts.used) } } : {}),
  };
}

function limitError(opts: { v: Vertex; limits: BuildLimits; stoppedBy: NonNullable<ExecResult['stoppedBy']> }): BuildError {
  const { v, limits } = opts;
  const where = v.location ? `${v.location.file}:${v.location.line}: ` : '';
  const step = v.name.replace(/^\[[^\]]*\]\s*/, '');
  const why =
    opts.stoppedBy === 'memory'
      ? `it used more than its memory limit of ${formatLimit(limits.memoryBytes ?? 0)} and was killed (-m/--memory)`
      : opts.stoppedBy === 'time'
        ? `it ran longer than its time limit of ${(limits.stepTimeoutMs ?? 0) / 1000} s and was stopped (--step-timeout)`
        : `the build wrote more than its disk limit of ${formatLimit(limits.diskBytes ?? 0)} and the step was stopped (--disk-limit)`;
  return new BuildError('ERR_KILN_LIMIT_EXCEEDED', `${where}${step}: ${why}`, { details: { limit: opts.stoppedBy } });
}

function formatLimit(n: number): string {
  for (const [unit, size] of [['GiB', 2 ** 30], ['MiB', 2 ** 20], ['KiB', 2 ** 10]] as const) if (n >= size) return `${+(n / size).toFixed(1)} ${unit}`;
  return `${n} bytes`;
}

export function hashId(s: string): string {
  return createHash('sha256').update(s).digest('hex').slice(0, 32);
}

