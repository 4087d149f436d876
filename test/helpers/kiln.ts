/** Test helpers: run the real `bin/kiln` against a temporary state directory with a busybox base image. */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, promises as fsp, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { TestContext } from 'node:test';
import { listLayer } from '../../src/layer/index.js';
import { openState } from '../../src/engine/index.js';
import type { ImageConfig, Manifest } from '../../src/oci/index.js';

export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const kilnBin = path.join(repoRoot, 'bin', 'kiln');

/** Why integration tests cannot run here, or undefined when they can. Under CI=true a reason is a failure. */
export function integrationBlocker(): string | undefined {
  if (process.getuid?.() !== 0) return 'needs root';
  if (spawnSync('runc', ['--version']).status !== 0) return 'runc is not installed';
  if (!existsSync('/bin/busybox')) return 'busybox-static is not installed';
  if (!existsSync(path.join(repoRoot, 'dist', 'cli', 'index.js'))) return 'kiln is not built (npm run build)';
  return undefined;
}

/** Skip with a printed reason on a laptop; fail under CI. */
export function requireIntegration(t: TestContext): boolean {
  const why = integrationBlocker();
  if (!why) return true;
  if (process.env.CI === 'true') throw new Error(`integration test cannot run under CI: ${why}`);
  t.skip(why);
  return false;
}

let busyboxTar: string | undefined;
export function busyboxRootfsTar(): string {
  if (busyboxTar) return busyboxTar;
  const out = path.join(tmpdir(), `kiln-test-busybox-${process.pid}.tar`);
  const r = spawnSync('bash', [path.join(repoRoot, 'scripts', 'make-busybox-rootfs.sh'), out], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`make-busybox-rootfs failed: ${r.stderr}`);
  process.once('exit', () => rmSync(out, { force: true }));
  busyboxTar = out;
  return out;
}

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

export function kilnSync(args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv; input?: string } = {}): RunResult {
  const r = spawnSync(kilnBin, args, { cwd: opts.cwd ?? repoRoot, env: { ...process.env, ...opts.env }, encoding: 'utf8', input: opts.input ?? '', maxBuffer: 64 * 1024 * 1024 });
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

export async function kiln(args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): Promise<RunResult> {
  return new Promise((resolve) => {
    const p = spawn(kilnBin, args, { cwd: opts.cwd ?? repoRoot, env: { ...process.env, ...opts.env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    p.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    p.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
  });
}

export function spawnKiln(args: string[], opts: { cwd?: string } = {}): ChildProcess {
  return spawn(kilnBin, args, { cwd: opts.cwd ?? repoRoot, stdio: ['ignore', 'pipe', 'pipe'], detached: false });
}

/** A temp state dir with busybox:latest imported. */
export async function newRoot(): Promise<string> {
  const root = mkdtempSync(path.join(tmpdir(), 'kiln-root-'));
  const r = kilnSync(['import', '--root', root, busyboxRootfsTar(), 'busybox:latest']);
  if (r.code !== 0) throw new Error(`import failed: ${r.stderr}`);
  return root;
}

/** A temp build context with the given files. */
export async function newContext(files: Record<string, string>): Promise<string> {
  const dir = mkdtempSync(path.join(tmpdir(), 'kiln-ctx-'));
  for (const [name, content] of Object.entries(files)) {
    const p = path.join(dir, name);
    await fsp.mkdir(path.dirname(p), { recursive: true });
    await fsp.writeFile(p, content);
  }
  return dir;
}

export async function cleanup(...dirs: string[]): Promise<void> {
  for (const d of dirs) {
    // snapshots may still be mounted if a test failed mid-build
    spawnSync('sh', ['-c', `grep -o " ${d}[^ ]*" /proc/self/mounts | xargs -r -n1 umount -l`]);
    await fsp.rm(d, { recursive: true, force: true });
  }
}

export interface BuildOutcome extends RunResult {
  meta: { 'containerimage.digest': string; 'containerimage.config.digest': string; 'kiln.steps': Array<{ name: string; cached: boolean; durationMs: number; missReason?: string }> };
}

/** `kiln build` with --metadata-file; returns the parsed metadata. */
export async function build(root: string, ctx: string, extra: string[] = []): Promise<BuildOutcome> {
  const metaFile = path.join(ctx, '..', `${path.basename(ctx)}-meta-${Date.now()}-${Math.random().toString(36).slice(2)}.json`);
  const r = await kiln(['build', '--root', root, '--progress=plain', '--metadata-file', metaFile, ...extra, ctx]);
  let meta = { 'containerimage.digest': '', 'containerimage.config.digest': '', 'kiln.steps': [] } as BuildOutcome['meta'];
  if (existsSync(metaFile)) {
    meta = JSON.parse(readFileSync(metaFile, 'utf8')) as BuildOutcome['meta'];
    await fsp.rm(metaFile, { force: true });
  }
  return { ...r, meta };
}

/** name → cached for the steps whose name contains each given text */
export function cachedFlags(meta: BuildOutcome['meta']): Array<[string, boolean]> {
  return meta['kiln.steps'].map((s) => [s.name, s.cached]);
}

/** Read an image's manifest and config straight from the state directory. */
export async function readImage(root: string, digest: string): Promise<{ manifest: Manifest; config: ImageConfig }> {
  const s = await openState({ root, cleanup: false });
  try {
    const manifest = JSON.parse((await s.store.read(digest as `sha256:${string}`)).toString()) as Manifest;
    const config = JSON.parse((await s.store.read(manifest.config.digest)).toString()) as ImageConfig;
    return { manifest, config };
  } finally {
    s.close();
  }
}

/** The image's files after applying every layer (whiteouts honoured): path → content (files) or type marker. */
export async function imageFiles(root: string, digest: string): Promise<Map<string, { type: string; mode: number; uid: number; gid: number; content?: string; linkname?: string }>> {
  const { manifest } = await readImage(root, digest);
  const files = new Map<string, { type: string; mode: number; uid: number; gid: number; content?: string; linkname?: string }>();
  for (const l of manifest.layers) {
    const blob = path.join(root, 'content', 'blobs', 'sha256', l.digest.slice(7));
    const entries = await listLayer({ source: blob, withContent: true });
    for (const e of entries) {
      const p = e.path.replace(/^(\.\/|\/)+/, '').replace(/\/$/, '');
      if (applyWhiteout(files, p)) continue;
      const linkTarget = e.type === 'link' && e.linkname ? files.get(e.linkname.replace(/^(\.\/|\/)+/, '')) : undefined;
      if (linkTarget) {
        files.set(p, { ...linkTarget });
        continue;
      }
      files.set(p, {
        type: e.type,
        mode: e.mode,
        uid: e.uid,
        gid: e.gid,
        ...(e.content ? { content: e.content.toString('utf8') } : {}),
        ...(e.linkname ? { linkname: e.linkname } : {}),
      });
    }
  }
  return files;
}

/**
 * Apply an OCI whiteout entry (`.wh.NAME` or the opaque marker `.wh..wh..opq`) at relative path `p` to a merged file
 * map. Returns true when `p` was a whiteout (and so is not a file of its own).
 */
export function applyWhiteout(files: Map<string, unknown>, p: string): boolean {
  const base = path.posix.basename(p);
  const dir = path.posix.dirname(p);
  if (base === '.wh..wh..opq') {
    for (const k of [...files.keys()]) if (k.startsWith(`${dir}/`)) files.delete(k);
    return true;
  }
  if (!base.startsWith('.wh.')) return false;
  const victim = dir === '.' ? base.slice(4) : `${dir}/${base.slice(4)}`;
  files.delete(victim);
  for (const k of [...files.keys()]) if (k.startsWith(`${victim}/`)) files.delete(k);
  return true;
}

/** Wait until a child kiln prints `marker` on stdout or stderr (a step has reached a known point); its output so far. */
export function waitForOutput(child: ChildProcess, marker: string, timeoutMs = 60_000): Promise<string> {
  let out = '';
  return new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the step never started: ${out}`)), timeoutMs);
    const on = (c: Buffer): void => {
      out += c.toString();
      if (out.includes(marker)) {
        clearTimeout(timer);
        resolve(out);
      }
    };
    child.stdout?.on('data', on);
    child.stderr?.on('data', on);
  });
}
