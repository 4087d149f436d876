/**
 * The cache oracle behind `kiln build --verify`: after a build, every step the cache supplied is rebuilt from scratch
 * (same Dockerfile, context, build args and secrets; no cache) in a scratch state root under the build's own root, and
 * the layer the cache supplied is compared with the fresh one, file by file, on exactly the fields a cache key must
 * cover (type, permission bits, owner, bytes, link target, hardlink structure, xattrs — never times). A difference is a
 * stale hit, unless a second fresh build differs from the first at the same path: then the step itself is
 * nondeterministic (a RUN writing a timestamp or random bytes) and the path is reported as such.
 * @internal
 */
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, promises as fsp } from 'node:fs';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { listLayer, type TarEntryInfo } from '../layer/index.js';
import { imageBlobs, openState, runBuild, type Blobs, type BuildRequest, type BuildResult, type Records, type State } from '../engine/index.js';
import { createProgress } from '../progress/index.js';
import type { Digest } from '../oci/index.js';

/** One field of one path that differs between the cache's layer and a fresh build's. */
export interface VerifyDifference {
  step: string;
  path: string;
  field: string;
  cached: string;
  fresh: string;
}

/** What the oracle found. */
export interface VerifyReport {
  /** steps the cache supplied */
  hits: number;
  /** hits whose layer equals a fresh build's on every keyed field */
  verified: number;
  /** hits that differ from a fresh build only where the step does not reproduce itself */
  nondeterministicSteps: number;
  stale: VerifyDifference[];
  /** differences explained by a step that does not reproduce itself */
  nondeterministic: VerifyDifference[];
}

export interface VerifyBuildOptions {
  state: State;
  /** the request the build ran with (its state, tags, outputs, pushes and cache exports are not reused) */
  request: BuildRequest;
  result: BuildResult;
  signal?: AbortSignal;
}

/** A layer entry reduced to the fields a key must cover. */
type Fields = Record<string, string>;

function fieldsOf(e: TarEntryInfo): Fields {
  const f: Fields = {
    type: e.type,
    mode: (e.mode & 0o7777).toString(8),
    owner: `${e.uid}:${e.gid}`,
  };
  if (e.type === 'file') f.content = e.sha256 ?? createHash('sha256').update(e.content ?? Buffer.alloc(0)).digest('hex');
  if (e.type === 'symlink') f.linkTarget = e.linkname ?? '';
  if (e.type === 'link') f.hardlink = clean(e.linkname ?? '');
  if (e.type === 'character-device' || e.type === 'block-device') f.device = `${e.devmajor ?? 0}:${e.devminor ?? 0}`;
  f.xattrs = JSON.stringify(Object.entries(e.xattrs ?? {}).sort(([a], [b]) => (a < b ? -1 : 1)));
  return f;
}

function clean(p: string): string {
  return p.replace(/^(\.\/|\/)+/, '').replace(/\/$/, '');
}

async function layerFields(s: Blobs & Records<'layers'>, diffId: string | null): Promise<Map<string, Fields>> {
  const out = new Map<string, Fields>();
  if (diffId === null) return out;
  const rec = s.db.layers.getLayer(diffId);
  if (!rec) throw new Error(`layer ${diffId} has no record`);
  for (const e of await listLayer({ source: s.store.path(rec.blob as Digest), withDigest: true })) out.set(clean(e.path), fieldsOf(e));
  return out;
}

/** Differences between two layers' entries: missing/extra paths and per-field changes. */
function diffLayers(step: string, a: Map<string, Fields>, b: Map<string, Fields>): VerifyDifference[] {
  const out: VerifyDifference[] = [];
  for (const [p, fa] of a) {
    const fb = b.get(p);
    if (!fb) {
      out.push({ step, path: p, field: 'presence', cached: 'present', fresh: 'absent' });
      continue;
    }
    for (const k of new Set([...Object.keys(fa), ...Object.keys(fb)])) {
      if (fa[k] !== fb[k]) out.push({ step, path: p, field: k, cached: fa[k] ?? '', fresh: fb[k] ?? '' });
    }
  }
  for (const p of b.keys()) if (!a.has(p)) out.push({ step, path: p, field: 'presence', cached: 'absent', fresh: 'present' });
  return out;
}

/** A fresh state root under the build's root, holding the local images the build may name (blobs hardlinked). */
async function scratchState(main: State): Promise<State> {
  const dir = path.join(main.root, 'tmp', `verify-${randomBytes(6).toString('hex')}`);
  const s = await openState({ root: dir, cleanup: false });
  for (const img of main.db.images.listImages()) {
    const digests = await imageBlobs(main, img.manifest as Digest);
    for (const d of digests) {
      const dst = s.store.path(d);
      if (existsSync(dst)) continue;
      await fsp.mkdir(path.dirname(dst), { recursive: true });
      await fsp.link(main.store.path(d), dst).catch(() => fsp.copyFile(main.store.path(d), dst));
    }
    s.db.images.putImage({ name: img.name, manifest: img.manifest, created: img.created });
  }
  return s;
}


async function freshBuild(scratch: State, req: BuildRequest, signal?: AbortSignal): Promise<BuildResult> {
  // nothing is shared with the outside: no tags, outputs, pushes, cache import/export or shared registry cache
  const { state: _s, tags: _t, outputs: _o, push: _p, cacheTo: _ct, cacheFrom: _cf, cacheRegistry: _cr, progress: _pr, signal: _sig, ...same } = req;
  return runBuild({ ...same, state: scratch, tags: [], noCache: true, progress: createProgress('quiet'), ...(signal ? { signal } : {}) });
}

async function removeScratch(s: State): Promise<void> {
  s.close();
  // snapshots are released by the build; a failed one may leave a mount below the scratch root
  spawnSync('sh', ['-c', `grep -o " ${s.root}/[^ ]*" /proc/self/mounts | xargs -r -n1 umount -l`]);
  await fsp.rm(s.root, { recursive: true, force: true });
}

/**
 * Rebuild every cache hit of `result` from scratch and compare. Throws when the fresh build itself fails.
 *
 * @example
 * const report = await verifyBuild({ state, request, result });
 * if (report.stale.length > 0) process.exitCode = 1;
 */
export async function verifyBuild(opts: VerifyBuildOptions): Promise<VerifyReport> {
  const hitIdx = opts.result.steps.map((st, i) => (st.cached ? i : -1)).filter((i) => i >= 0);
  const report: VerifyReport = { hits: hitIdx.length, verified: 0, nondeterministicSteps: 0, stale: [], nondeterministic: [] };
  if (hitIdx.length === 0) return report;
  const scratch = await scratchState(opts.state);
  try {
    const first = await freshBuild(scratch, opts.request, opts.signal);
    let second: BuildResult | undefined;
    for (const i of hitIdx) {
      const hit = opts.result.steps[i]!;
      const fresh = first.steps[i];
      if (!fresh || fresh.name !== hit.name) throw new Error(`the fresh build has other steps than the build (${hit.name})`);
      if (fresh.diffId === hit.diffId) {
        report.verified++;
        continue;
      }
      const diffs = diffLayers(hit.name, await layerFields(opts.state, hit.diffId), await layerFields(scratch, fresh.diffId));
      if (diffs.length === 0) {
        report.verified++; // the layers differ only in what no key covers (times)
        continue;
      }
      second ??= await freshBuild(scratch, opts.request, opts.signal);
      const again = second.steps[i]!;
      const unstable = new Set(diffLayers(hit.name, await layerFields(scratch, fresh.diffId), await layerFields(scratch, again.diffId)).map((d) => d.path));
      for (const d of diffs) (unstable.has(d.path) ? report.nondeterministic : report.stale).push(d);
      if (!diffs.some((d) => !unstable.has(d.path))) report.nondeterministicSteps++;
    }
  } finally {
    await removeScratch(scratch);
  }
  return report;
}

/** The report as lines for the terminal. */
export function formatVerifyReport(r: VerifyReport): string[] {
  const lines: string[] = [];
  for (const d of r.stale) lines.push(`verify: STALE HIT ${d.step}: ${d.path}: ${d.field} (cache: ${d.cached}, fresh build: ${d.fresh})`);
  for (const d of r.nondeterministic) lines.push(`verify: nondeterministic step ${d.step}: ${d.path}: ${d.field} differs between two fresh builds (not a stale hit)`);
  const staleSteps = new Set(r.stale.map((d) => d.step)).size;
  lines.push(staleSteps > 0
    ? `verify: ${staleSteps} of ${r.hits} cache hits are stale`
    : `verify: ${r.verified} of ${r.hits} cache hits verified${r.nondeterministicSteps > 0 ? `, ${r.nondeterministicSteps} nondeterministic` : ''}`);
  return lines;
}
