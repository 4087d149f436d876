/**
 * Conformance, end to end: every buildah build case that needs only `scratch` or busybox is built with the real
 * `bin/kiln` (one shared state root; the cases' busybox references are tags of the local busybox image). A case
 * expected to fail must fail at its Dockerfile line; every other case must build, and where Docker built it
 * (expected-docker.json, BuildKit or classic result), the image config fields and the files the build changed
 * must match Docker's: type, mode, owner, size, content digest, link target, and mtimes of files that come from
 * the inputs (not of files the build itself created: those carry the build's clock).
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { listLayer, type TarEntryInfo } from '../../src/layer/index.js';
import { openState } from '../../src/engine/index.js';
import { parseDockerfile } from '../../src/frontend/dockerfile/instructions/index.js';
import { applyWhiteout, build, busyboxRootfsTar, cleanup, integrationBlocker, kilnSync, newRoot, readImage, requireIntegration } from '../helpers/kiln.js';
import { compareFs, loadBuildCases, TEST_DATE, pathsOnlyNewerDockerSends, prepareCaseContext, type BuildCase, type DockerConfig, type DockerResult, type FsEntry } from '../helpers/build-cases.js';

/**
 * Docker built the expected results with a clock in late 2026 (mtimes ≥ 1.79e9), while every input file predates
 * 2021. An expected mtime after this instant is Docker's build clock: a file a RUN or a heredoc created.
 */
const BUILD_CLOCK_FROM = 1_700_000_000;
/** cases built at once (2 cores in CI; most of a case's time is process start-up and waiting on runc) */
const CONCURRENCY = 4;

const { cases, expected } = loadBuildCases();
const inScope = cases.filter((c) => c.base_images.every((b) => b === 'scratch' || b === 'busybox'));

let root = '';
let work = '';
const layerCache = new Map<string, Promise<TarEntryInfo[]>>();

before(async () => {
  if (integrationBlocker()) return;
  root = await newRoot();
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'kiln-build-cases-'));
  // Docker's busybox base had upstream's test date as every mtime (`touch -r /bin`, `cp -p /etc/passwd` show it)
  const rootfs = path.join(work, 'busybox-rootfs');
  fs.mkdirSync(rootfs);
  execFileSync('tar', ['-xf', busyboxRootfsTar(), '-C', rootfs]);
  execFileSync('find', [rootfs, '-exec', 'touch', '-h', '-d', `@${TEST_DATE}`, '{}', '+']);
  const imp = kilnSync(['import', '--root', root, rootfs, 'busybox:latest']);
  if (imp.code !== 0) throw new Error(`kiln import: ${imp.stderr}`);
  const refs = new Set(inScope.flatMap((c) => c.from_refs).filter((r) => r !== 'scratch' && !r.includes('$')).map((r) => r.replace(/@.*$/, '')));
  for (const ref of refs) {
    const r = kilnSync(['tag', '--root', root, 'busybox:latest', ref]);
    if (r.code !== 0) throw new Error(`kiln tag ${ref}: ${r.stderr}`);
  }
});
after(async () => {
  if (root) await cleanup(root, work);
});

function layerEntries(blob: string): Promise<TarEntryInfo[]> {
  let p = layerCache.get(blob);
  if (!p) {
    p = listLayer({ source: blob, withContent: true });
    layerCache.set(blob, p);
  }
  return p;
}

/** The filesystem of layers[0..n) with whiteouts applied, in expected-docker.json's shape. */
async function treeOf(layerBlobs: string[]): Promise<Map<string, FsEntry>> {
  const files = new Map<string, FsEntry>();
  for (const blob of layerBlobs) {
    for (const e of await layerEntries(blob)) {
      const p = e.path.replace(/^(\.\/|\/)+/, '').replace(/\/$/, '');
      if (p === '' || p === '.') continue;
      if (applyWhiteout(files, p)) continue;
      if (e.type === 'directory' && files.get(p)?.type === 'dir') {
        files.set(p, { ...files.get(p)!, mode: e.mode, uid: e.uid, gid: e.gid, mtime: e.mtime });
        continue;
      }
      if (e.type !== 'directory') for (const k of [...files.keys()]) if (k.startsWith(`${p}/`)) files.delete(k);
      if (e.type === 'link') {
        const target = files.get((e.linkname ?? '').replace(/^(\.\/|\/)+/, ''));
        if (target) files.set(p, { ...target });
        continue;
      }
      files.set(p, entryOf(e));
    }
  }
  return files;
}

function entryOf(e: TarEntryInfo): FsEntry {
  const type = e.type === 'file' ? 'reg' : e.type === 'directory' ? 'dir' : e.type;
  return {
    type,
    mode: e.mode & 0o7777,
    uid: e.uid,
    gid: e.gid,
    size: type === 'reg' ? e.size : null,
    sha256: type === 'reg' ? crypto.createHash('sha256').update(e.content ?? Buffer.alloc(0)).digest('hex') : null,
    link: type === 'symlink' ? (e.linkname ?? '') : null,
    mtime: e.mtime,
  };
}

function sameEntry(a: FsEntry, b: FsEntry): boolean {
  return a.type === b.type && a.mode === b.mode && a.uid === b.uid && a.gid === b.gid && a.size === b.size && a.sha256 === b.sha256 && a.link === b.link;
}

/** Config fields as comparable data: Env a sorted map without PATH (Docker's results leave PATH out), sets as sorted lists. */
type ComparableConfig = Record<keyof DockerConfig, unknown>;

function comparable(cfg: Record<string, unknown>, env: Array<[string, string]>): ComparableConfig {
  const pick = (k: string): unknown => {
    const v = cfg[k];
    if (v === undefined || v === null || v === '') return null;
    return v;
  };
  const set = (k: string): string[] | null => {
    const v = cfg[k];
    if (v === undefined || v === null) return null;
    const keys = Array.isArray(v) ? (v as string[]) : Object.keys(v as object);
    return keys.length === 0 ? null : [...keys].sort();
  };
  const labels = pick('Labels') as Record<string, string> | null;
  return {
    Cmd: pick('Cmd'),
    Entrypoint: pick('Entrypoint'),
    Env: Object.fromEntries(env.filter(([k]) => k !== 'PATH').sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))),
    ExposedPorts: set('ExposedPorts'),
    Labels: labels && Object.keys(labels).length > 0 ? Object.fromEntries(Object.entries(labels).sort()) : null,
    StopSignal: pick('StopSignal'),
    User: pick('User'),
    Volumes: set('Volumes'),
    WorkingDir: pick('WorkingDir'),
  };
}

/** kiln's image config (Env as `K=V` strings). */
function kilnConfig(cfg: Record<string, unknown>): ComparableConfig {
  const env = ((cfg.Env as string[] | undefined) ?? []).map((e): [string, string] => {
    const eq = e.indexOf('=');
    return eq < 0 ? [e, ''] : [e.slice(0, eq), e.slice(eq + 1)];
  });
  return comparable(cfg, env);
}

/** Docker's recorded config (Env already a map). */
function dockerConfig(cfg: DockerConfig): ComparableConfig {
  return comparable(cfg as unknown as Record<string, unknown>, Object.entries(cfg.Env ?? {}));
}

/** Differences between kiln's image and one Docker result. */
function differences(c: BuildCase, kiln: KilnResult, docker: DockerResult): string[] {
  const problems: string[] = [];
  const want = dockerConfig(docker.cfg);
  for (const k of Object.keys(want) as Array<keyof DockerConfig>) {
    if (JSON.stringify(kiln.cfg[k]) !== JSON.stringify(want[k])) problems.push(`config ${k}: ${JSON.stringify(kiln.cfg[k])} != docker ${JSON.stringify(want[k])}`);
  }
  // the paths kiln's build changed relative to its base
  const changed: string[] = [];
  for (const [p, e] of kiln.tree) {
    const b = kiln.base.get(p);
    if (!b || !sameEntry(b, e)) changed.push(p);
  }
  for (const p of kiln.base.keys()) if (!kiln.tree.has(p) && !docker.fs.del.includes(p)) problems.push(`deleted ${p}`);
  const stubs = mountStubs(kiln.mountTargets, docker.fs.set);
  for (const p of docker.fs.del) if (kiln.tree.has(p)) problems.push(`not deleted ${p}`);
  const supplied = new Set((c.context_requires ?? []).map((r) => r.path));
  problems.push(
    ...compareFs(c, Object.fromEntries(kiln.tree), docker.fs.set, {
      // extra paths are not comparable when Docker 20.10 sent less of the context than current BuildKit does
      paths: { actual: kiln.newerIgnoreSemantics ? [] : changed },
      compareMtime: (_p, w) => w.type !== 'dir' && w.mtime < BUILD_CLOCK_FROM,
      ignoreFields: (p) => {
        const sha = kiln.tree.get(p)?.sha256;
        // files the test supplies in place of upstream's (context_requires) have other bytes than Docker's
        if (supplied.has(path.posix.basename(p))) return ['size', 'sha256', 'mtime'];
        // a copy of the Dockerfile: Docker built from one whose FROM lines and `# syntax` were rewritten
        if (sha && sha === kiln.dockerfileSha) return ['size', 'sha256'];
        // a copy of a base-image file a RUN read (Docker's busybox rootfs had other /etc files)
        if (sha && kiln.baseFilesRead.has(sha)) return ['size', 'sha256'];
        return [];
      },
    }),
  );
  // Docker 20.10 left RUN mount points behind as empty directories; current BuildKit and kiln remove them
  return problems.filter((m) => !(m.startsWith('missing ') && stubs.has(m.slice(8))));
}

/** Expected directories that are only mount points: a mount target or its parent, holding nothing but stubs. */
function mountStubs(targets: string[], set: Record<string, FsEntry>): Set<string> {
  const candidates = new Set<string>();
  for (const t of targets) {
    const parts = t.split('/').filter(Boolean);
    for (let i = 1; i <= parts.length; i++) candidates.add(parts.slice(0, i).join('/'));
  }
  const stubs = new Set<string>();
  const isStub = (p: string): boolean => {
    if (!candidates.has(p) || set[p]?.type !== 'dir') return false;
    return Object.keys(set).every((q) => !q.startsWith(`${p}/`) || isStub(q));
  };
  for (const p of candidates) if (isStub(p)) stubs.add(p);
  return stubs;
}

/** Mount targets of the case's RUN steps, plus the runtime's own /etc/hosts and /etc/resolv.conf. */
function runMountTargets(dockerfileText: string): string[] {
  const df = parseDockerfile(dockerfileText, { file: 'Dockerfile' });
  const runs = df.stages.flatMap((st) => st.commands).filter((cmd) => cmd.name === 'run');
  if (runs.length === 0) return [];
  const targets = ['/etc/hosts', '/etc/resolv.conf'];
  for (const run of runs) {
    for (const m of run.name === 'run' ? run.mounts : []) {
      const t = /(?:^|,)(?:target|destination|dst|dest)=([^,]+)/.exec(m);
      if (t) targets.push(t[1]!);
    }
  }
  return targets;
}

interface KilnResult {
  cfg: ComparableConfig;
  tree: Map<string, FsEntry>;
  base: Map<string, FsEntry>;
  dockerfileSha: string;
  /** content digests of the base-image files the case's RUN steps read (base_image_paths_used_by_RUN) */
  baseFilesRead: Set<string>;
  newerIgnoreSemantics: boolean;
  /** where the case's RUN steps mount things */
  mountTargets: string[];
}

/** Put what a case needs in its context that the shared data cannot hold (context_requires). */
function supplyRequired(c: BuildCase, ctx: string): void {
  for (const r of c.context_requires ?? []) {
    // a static executable that exits 0: busybox runs its `true` applet when called by that name
    const p = path.join(ctx, r.path);
    fs.copyFileSync('/bin/busybox', p);
    fs.chmodSync(p, 0o755);
  }
}

describe('buildah build cases (scratch, busybox) built by kiln against Docker', { concurrency: CONCURRENCY }, () => {
  test('selection', () => assert.ok(inScope.length >= 150, `only ${inScope.length} cases in scope`));
  for (const c of inScope) {
    test(c.case, async (t) => {
      if (!requireIntegration(t)) return;
      const ctx = await prepareCaseContext(c, work);
      supplyRequired(c, ctx);
      const dockerfile = path.join(ctx, c.dockerfile);
      const args = ['-f', dockerfile];
      for (const [k, v] of Object.entries(c.build_args ?? {})) args.push('--build-arg', `${k}=${v}`);
      const r = await build(root, ctx, args);
      const results = expected[c.case];
      if (c.expect_failure_at_line !== undefined) {
        assert.notEqual(r.code, 0, `expected a failure at line ${c.expect_failure_at_line}, but the build succeeded`);
        const at = new RegExp(`(^|[\\s/])${escapeRe(path.basename(c.dockerfile))}:${c.expect_failure_at_line}\\b`);
        assert.match(r.stderr, at, `the error should name ${c.dockerfile}:${c.expect_failure_at_line}`);
        if (c.failure_regex) assert.match(r.stderr, new RegExp(c.failure_regex, 'i'));
        return;
      }
      if (results && !results.buildkit && results.classic) {
        // only the classic builder could build it; kiln follows BuildKit (as test/conformance/file-ops does)
        assert.notEqual(r.code, 0, 'Docker with BuildKit fails this case; kiln should fail too');
        assert.match(r.stderr, /Dockerfile[^\s:]*:\d+/, 'the error should name the Dockerfile line');
        return;
      }
      assert.equal(r.code, 0, `build failed:\n${r.stderr.split('\n').slice(-8).join('\n')}`);
      const dockers = [results?.buildkit, results?.classic].filter((x): x is DockerResult => !!x);
      if (dockers.length === 0) return; // Docker 20.10 could not build it (labs flags): building is the check
      const { manifest, config } = await readImage(root, r.meta['containerimage.digest']);
      const blobs = manifest.layers.map((l) => path.join(root, 'content', 'blobs', 'sha256', l.digest.slice(7)));
      const bbBlobs = await busyboxBlobs();
      const onBusybox = bbBlobs.length > 0 && bbBlobs.every((b, i) => blobs[i] === b);
      const bbTree = await treeOf(bbBlobs);
      const newer = pathsOnlyNewerDockerSends(ctx);
      if (newer.length > 0) t.diagnostic(`Docker 20.10 did not send ${newer.join(', ')}; extra files are not compared`);
      const kiln: KilnResult = {
        cfg: kilnConfig(config.config as unknown as Record<string, unknown>),
        tree: await treeOf(blobs),
        base: onBusybox ? bbTree : new Map<string, FsEntry>(),
        dockerfileSha: crypto.createHash('sha256').update(fs.readFileSync(dockerfile)).digest('hex'),
        baseFilesRead: new Set((c.base_image_paths_used_by_RUN ?? []).map((p) => bbTree.get(p.replace(/^\/+/, ''))?.sha256 ?? '').filter(Boolean)),
        newerIgnoreSemantics: newer.length > 0,
        mountTargets: runMountTargets(fs.readFileSync(dockerfile, 'utf8')),
      };
      const diffs = dockers.map((d) => differences(c, kiln, d));
      const best = diffs.reduce((a, b) => (b.length < a.length ? b : a));
      assert.deepEqual(best, [], `differs from Docker (${diffs.length} result(s))`);
    });
  }
});

let bbBlobsP: Promise<string[]> | undefined;
/** The local busybox image's layer blobs (the base every busybox case starts from). */
function busyboxBlobs(): Promise<string[]> {
  bbBlobsP ??= (async () => {
    const s = await openState({ root, cleanup: false });
    let digest: string | undefined;
    try {
      digest = s.db.images.getImage('busybox:latest')?.manifest;
    } finally {
      s.close();
    }
    if (!digest) throw new Error('busybox:latest is missing from the test state');
    const { manifest } = await readImage(root, digest);
    return manifest.layers.map((l) => path.join(root, 'content', 'blobs', 'sha256', l.digest.slice(7)));
  })();
  return bbBlobsP;
}

function escapeRe(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
