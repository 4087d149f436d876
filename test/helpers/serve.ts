/** Test helpers for `kiln serve`: a real server child process on a free loopback port, and small API calls. */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { kilnBin, kilnSync } from './kiln.js';

export interface ServeProcess {
  url: string;
  proc: ChildProcess;
  /** everything the server printed (JSON log lines on stdout) */
  output(): string;
  /** SIGTERM and wait for the exit code */
  stop(): Promise<number | null>;
  /** SIGKILL and wait */
  kill(): Promise<void>;
}

/** Start `kiln --root ROOT serve --listen 127.0.0.1:0` and wait for its `listening` log line. */
export async function startServe(root: string, extra: string[] = [], opts: { env?: NodeJS.ProcessEnv } = {}): Promise<ServeProcess> {
  const proc = spawn(kilnBin, ['--root', root, 'serve', '--listen', '127.0.0.1:0', ...extra], { stdio: ['ignore', 'pipe', 'pipe'], ...(opts.env ? { env: { ...process.env, ...opts.env } } : {}) });
  let out = '';
  let err = '';
  proc.stderr!.on('data', (c: Buffer) => (err += c.toString()));
  const exited = new Promise<number | null>((r) => proc.on('exit', (code) => r(code)));
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`kiln serve did not start: ${err}`)), 30_000);
    proc.stdout!.on('data', (c: Buffer) => {
      out += c.toString();
      const m = /"msg":"listening","url":"([^"]+)"/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]!);
      }
    });
    proc.on('exit', (code) => reject(new Error(`kiln serve exited (${code}): ${err}`)));
  });
  return {
    url,
    proc,
    output: () => out + err,
    stop: async () => {
      proc.kill('SIGTERM');
      return exited;
    },
    kill: async () => {
      proc.kill('SIGKILL');
      await exited;
    },
  };
}

/** `kiln admin team create NAME` + `key create`: the new key. */
export function newTeamKey(root: string, team: string): string {
  const t = kilnSync(['--root', root, 'admin', 'team', 'create', team]);
  if (t.code !== 0 && !/already exists/.test(t.stderr)) throw new Error(`team create: ${t.stderr}`);
  const k = kilnSync(['--root', root, 'admin', 'key', 'create', '--team', team]);
  if (k.code !== 0) throw new Error(`key create: ${k.stderr}`);
  return k.stdout.trim();
}

export interface ApiResponse {
  status: number;
  body: unknown;
  text: string;
  headers: Headers;
}

/** One JSON API call. */
export async function api(url: string, key: string | undefined, method: string, p: string, body?: unknown): Promise<ApiResponse> {
  const res = await fetch(`${url}${p}`, {
    method,
    headers: { ...(key ? { authorization: `Bearer ${key}` } : {}), ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
    ...(body !== undefined ? { body: typeof body === 'string' ? body : JSON.stringify(body) } : {}),
  });
  const text = await res.text();
  let parsed: unknown = undefined;
  try {
    parsed = JSON.parse(text);
  } catch {
    /* not JSON */
  }
  return { status: res.status, body: parsed, text, headers: res.headers };
}

/** Poll a build until it is no longer queued or running. */
export async function waitBuild(url: string, key: string, id: string, timeoutMs = 120_000): Promise<{ status: string; result: { steps: Array<{ name: string; cached: boolean; durationMs: number }>; digest: string } | null; error: string | null }> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const r = await api(url, key, 'GET', `/v1/builds/${id}`);
    const b = r.body as { status: string; result: never; error: string | null };
    if (b.status !== 'queued' && b.status !== 'running') return b;
    if (Date.now() > until) throw new Error(`build ${id} still ${b.status}`);
    await new Promise((res) => setTimeout(res, 100));
  }
}

/** Mounts and runc containers left under a directory (both must be none after a build ends). */
export function leftovers(root: string): { mounts: string[]; containers: string[] } {
  const mounts = spawnSync('sh', ['-c', `grep -o " ${root}[^ ]*" /proc/self/mounts || true`], { encoding: 'utf8' }).stdout.split('\n').filter(Boolean);
  const list = spawnSync('sh', ['-c', `for d in $(find ${root} -type d -path '*/exec/runc' 2>/dev/null); do runc --root "$d" list -q; done`], { encoding: 'utf8' }).stdout.split('\n').filter(Boolean);
  return { mounts, containers: list };
}
