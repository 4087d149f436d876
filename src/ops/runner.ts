import { createHash, randomBytes } from 'node:crypto';
import { existsSync, promises as fsp, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { BuildError, DockerfileError, ExecError } from '../errors/index.js';
import type { CopyOp, ExecOp, MkdirOp, Vertex } from '../graph/index.js';
import type { Digest } from '../oci/index.js';
import type { ExecMount } from '../executor/index.js';
import type { OpRunner, RunContext } from '../solver/index.js';
import type { ActiveSnapshot } from '../snapshot/index.js';
import { applyLayer, writeLayer } from '../layer/index.js';
import { checksumSources, createPatternMatcher } from '../context/index.js';
import { copyInto } from './file/index.js';
import { resolveChown } from './users.js';
import type { OpsOptions } from './types.js';
import { lockCacheMount } from './cache-mount.js';

const LAST_LINES = 12;

/** Executes graph vertices for real: overlay snapshots, runc, file copies, layer tars. */
export function createOpRunner(o: OpsOptions): OpRunner & { ensureSnapshots(layers: Digest[]): Promise<number[]> } {
  const unpacking = new Map<string, Promise<number>>();

  /** The snapshot id holding the unpacked layer, unpacking the blob if needed. */
  function ensureSnapshot(diffId: Digest): Promise<number> {
    let p = unpacking.get(diffId);
    if (!p) {
      p = (async () => {
        const rec = o.db.getLayer(diffId);
        if (!rec) throw new BuildError('ERR_KILN_STORE_NOT_FOUND', `layer ${diffId} is not known to the store`);
        if (rec.snapshotId !== null && o.db.getSnapshot(rec.snapshotId)?.state === 'committed' && existsSync(o.snapshots.dir(rec.snapshotId))) {
          return rec.snapshotId;
        }
        const snap = await o.snapshots.create();
        try {
          await applyLayer({ source: o.store.path(rec.blob), dest: snap.dir, mode: 'overlay' });
        } catch (err) {
          await snap.abort();
          throw err;
        }
        const id = await snap.commit();
        o.db.tx(() => {
          o.db.commitSnapshot(id, diffId);
          o.db.setLayerSnapshot(diffId, id);
        });
        return id;
      })();
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
    const lowers = await ensureSnapshots(layers);
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
  async function commitLayer(snap: ActiveSnapshot, signal: AbortSignal): Promise<{ diffId: Digest; contentId: string } | null> {
    await snap.unmount();
    if (readdirSync(snap.upperDir).length === 0) {
      await snap.release();
      return null;
    }
    const info = await writeLayer({
      dir: snap.upperDir,
      ingester: o.store,
      compression: 'gzip',
      overlay: true,
      signal,
      ...(o.sourceDateEpoch !== undefined ? { sourceDateEpoch: o.sourceDateEpoch } : {}),
    });
    const contentId = (info as { contentId?: string }).contentId ?? info.diffId;
    const existing = o.db.getLayer(info.diffId);
    if (existing?.snapshotId != null && o.db.getSnapshot(existing.snapshotId)?.state === 'committed') {
      // the same layer is already unpacked: keep that one
      await snap.release();
      o.db.touchLayer(info.diffId);
      return { diffId: info.diffId, contentId };
    }
    const id = await snap.commit();
    o.db.tx(() => {
      o.db.commitSnapshot(id, info.diffId);
      o.db.putLayer({ diffId: info.diffId, blob: info.digest, blobSize: info.size, mediaType: info.mediaType, contentId, snapshotId: id });
    });
    return { diffId: info.diffId, contentId };
  }

  async function runExec(v: Vertex, op: ExecOp, ctx: RunContext): Promise<{ diffId: Digest; contentId: string } | null> {
    const snap = await mountOver(ctx.parent?.layers ?? []);
    const cleanups: Array<() => Promise<void>> = [];
    try {
      const mounts: ExecMount[] = [];
      const env = [...op.env];
      for (const m of op.mounts) {
        switch (m.type) {
          case 'cache': {
            const cm = await lockCacheMount({ stateDir: o.stateDir, def: m, signal: ctx.signal, seed: m.fromVertex ? await seedDir(m.fromVertex, m.source ?? '/', ctx) : undefined });
            cleanups.push(cm.release);
            mounts.push({ type: 'bind', source: cm.dir, destination: m.target, readonly: m.readonly === true });
            break;
          }
          case 'tmpfs':
            mounts.push({ type: 'tmpfs', destination: m.target, options: m.size ? [`size=${m.size}`] : [] });
            break;
          case 'secret': {
            const s = o.secrets.get(m.id ?? '');
            let value: Buffer | undefined;
            if (s?.file) value = await fsp.readFile(s.file);
            else if (s?.env !== undefined && process.env[s.env] !== undefined) value = Buffer.from(process.env[s.env]!);
            if (value === undefined) {
              if (m.required) throw new BuildError('ERR_KILN_SECRET_NOT_FOUND', `secret "${m.id}" was not provided`);
              break;
            }
            if (m.env) env.push(`${m.env}=${value.toString()}`);
            if (m.target) {
              const dir = path.join(o.stateDir, 'tmp', `secret-${randomBytes(8).toString('hex')}`);
              await fsp.mkdir(dir, { recursive: true, mode: 0o700 });
              const f = path.join(dir, 'secret');
              await fsp.writeFile(f, value, { mode: m.mode ?? 0o400 });
              await fsp.chown(f, m.uid ?? 0, m.gid ?? 0);
              cleanups.push(() => fsp.rm(dir, { recursive: true, force: true }));
              mounts.push({ type: 'bind', source: f, destination: m.target, readonly: true });
            }
            break;
          }
          case 'bind': {
            let src: string;
            if (m.fromVertex) src = await seedDir(m.fromVertex, m.source ?? '/', ctx, cleanups);
            else src = insideContext(m.source ?? '.', v);
            if (m.readonly === false) {
              const dir = path.join(o.stateDir, 'tmp', `bind-${randomBytes(8).toString('hex')}`);
              await fsp.cp(src, dir, { recursive: true, verbatimSymlinks: true });
              cleanups.push(() => fsp.rm(dir, { recursive: true, force: true }));
              src = dir;
            }
            mounts.push({ type: 'bind', source: src, destination: m.target, readonly: m.readonly !== false });
            break;
          }
          default:
            throw new BuildError('ERR_KILN_NOT_SUPPORTED', `mount type ${m.type} is not supported`);
        }
      }
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
        network: op.network === 'none' ? 'none' : 'host',
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
      if (res.exitCode !== 0) {
        const where = v.location ? `${v.location.file}:${v.location.line}: ` : '';
        const cmd = op.args.length >= 3 && op.args[op.args.length - 2] === '-c' ? op.args[op.args.length - 1]! : JSON.stringify(op.args);
        throw new ExecError({
          message: `${where}${v.name.replace(/^\[[^\]]*\]\s*/, '')}: process "${cmd.length > 200 ? `${cmd.slice(0, 200)}...` : cmd}" did not complete successfully: exit code ${res.exitCode}`,
          exitCode: res.exitCode,
          command: cmd,
          lastOutput: last.slice(-LAST_LINES),
        });
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

  /** A directory holding `source` of another vertex's output (mounted for the duration of the step). */
  async function seedDir(vertexId: string, source: string, ctx: RunContext, cleanups?: Array<() => Promise<void>>): Promise<string> {
    const dep = ctx.deps.get(vertexId);
    if (!dep) throw new Error(`missing dependency ${vertexId}`);
    const snap = await mountOver(dep.layers);
    const release = async (): Promise<void> => snap.release();
    if (cleanups) cleanups.push(release);
    else ctx.signal.addEventListener('abort', () => void release(), { once: true });
    const p = path.join(snap.mountpoint, source);
    if (!cleanups) {
      // a cache seed is copied by the caller right away
      const tmp = path.join(o.stateDir, 'tmp', `seed-${randomBytes(8).toString('hex')}`);
      await fsp.cp(p, tmp, { recursive: true, verbatimSymlinks: true }).catch(() => fsp.mkdir(tmp, { recursive: true }));
      await release();
      return tmp;
    }
    return p;
  }

  function insideContext(rel: string, v: Vertex): string {
    const p = path.resolve(o.contextDir, rel.replace(/^\/+/, ''));
    if (p !== o.contextDir && !p.startsWith(o.contextDir + path.sep)) {
      throw new DockerfileError(`path "${rel}" is outside of the build context`, v.location, { code: 'ERR_KILN_CONTEXT_ESCAPE' });
    }
    return p;
  }

  async function runCopy(v: Vertex, op: CopyOp, ctx: RunContext): Promise<{ diffId: Digest; contentId: string } | null> {
    const snap = await mountOver(op.link ? [] : ctx.parent?.layers ?? []);
    let srcSnap: ActiveSnapshot | undefined;
    try {
      let srcRoot = o.contextDir;
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
      try {
        await copyInto({
          srcRoot,
          sources: op.sources,
          inline: op.inline,
          destRoot: snap.mountpoint,
          dest: op.dest,
          workdir: op.workdir,
          ...(chown ? { chown } : {}),
          ...(op.chmod ? { chmod: op.chmod } : {}),
          ...(op.from === 'context'
            ? { isIgnored: o.isIgnored, ignoreHasExceptions: o.ignorePatterns.some((p) => p.startsWith('!')) }
            : { preserveOwnership: true }),
          excludes: op.excludes,
          parents: op.parents,
          unpackArchives: op.add,
          followSourceSymlinks: true,
          signal: ctx.signal,
        });
      } catch (err) {
        if (err instanceof DockerfileError || !v.location) throw err;
        const e = err as BuildError;
        if (e.code) throw new DockerfileError(e.message, v.location, { code: e.code, cause: err });
        throw err;
      }
      await srcSnap?.release();
      srcSnap = undefined;
      return await commitLayer(snap, ctx.signal);
    } catch (err) {
      await snap.release();
      throw err;
    } finally {
      await srcSnap?.release();
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
    async contentInputs(v, _ctx) {
      if (v.op.type !== 'copy' || v.op.from !== 'context') return {};
      const sources = v.op.sources.filter((s) => !/^https?:\/\//.test(s));
      if (sources.length === 0) return {};
      try {
        const r = await checksumSources({
          dir: o.contextDir,
          sources,
          ignore: createPatternMatcher(o.ignorePatterns),
          statCache: o.statCache,
          includeOwnership: false,
          excludes: v.op.excludes,
        });
        const files = r.files.length <= 2000 ? r.files.map((f) => [f.path, f.digest, f.mode]) : undefined;
        return { digest: r.digest, ...(files ? { files } : { fileCount: r.files.length }) };
      } catch (err) {
        const e = err as BuildError;
        if (v.location && e.code && !(err instanceof DockerfileError)) throw new DockerfileError(e.message, v.location, { code: e.code, cause: err });
        throw err;
      }
    },
    async execute(v, ctx) {
      switch (v.op.type) {
        case 'exec':
          return runExec(v, v.op, ctx);
        case 'copy':
          return runCopy(v, v.op, ctx);
        case 'mkdir':
          return runMkdir(v.op, ctx);
        case 'meta':
          return null;
        case 'source':
          throw new Error('source vertices are resolved, not executed');
      }
    },
    async layerUsable(diffId) {
      const rec = o.db.getLayer(diffId);
      if (!rec) return undefined;
      try {
        const st = statSync(o.store.path(rec.blob));
        if (st.size !== rec.blobSize) return undefined;
      } catch {
        return undefined;
      }
      o.db.touchLayer(diffId);
      return { contentId: rec.contentId };
    },
  };
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

export function hashId(s: string): string {
  return createHash('sha256').update(s).digest('hex').slice(0, 32);
}
