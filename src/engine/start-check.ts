import { randomBytes } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { BuildError } from '../errors/index.js';
import { sha256, type Digest, type ImageConfig } from '../oci/index.js';
import { withImageRootfs } from './rootfs.js';
import type { State } from './state.js';
import type { StartCheck } from '../graph/index.js';

export type { StartCheck };

/** How a start check went. */
export interface StartCheckResult {
  /** passed before for the same image and start command: not run again */
  cached: boolean;
  durationMs: number;
  key: string;
}

/** Options of {@link proveStartCommand}. */
export interface ProveStartOptions {
  state: State;
  manifestDigest: Digest;
  config: ImageConfig;
  check: StartCheck;
  /** the container's output as it comes */
  onOutput?: (stream: 'stdout' | 'stderr', chunk: Buffer) => void;
  signal?: AbortSignal;
}

const KEY_VERSION = 'kiln-start-check-v1';
const DEFAULT_TIMEOUT_MS = 60_000;
const LAST_LINES = 20;
/** the wrapper's exit status when the start command ended before it was ready */
const EXITED_EARLY = 97;

function shq(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

/** The cache key of a check: the image (its config holds env, user, workdir) and the commands, field by field. */
export function startCheckKey(manifestDigest: Digest, check: StartCheck): string {
  const fields = [KEY_VERSION, manifestDigest, JSON.stringify(check.cmd ?? null), JSON.stringify(check.readyCmd ?? null), String(check.cpuCount ?? ''), String(check.memoryMB ?? '')];
  return sha256(fields.join('\n')).slice('sha256:'.length);
}

function recordPath(root: string, key: string): string {
  return path.join(root, 'start-checks', key.slice(0, 2), key);
}

/**
 * The script pid 1 of the check's container runs: the start command in the background, then the ready command every
 * 0.2 s until it passes (exit 0) or the start command ends first (exit 97, with its status on stderr).
 */
function wrapperScript(check: StartCheck, cmd: string | string[]): string {
  const start = typeof cmd === 'string' ? `/bin/sh -c ${shq(cmd)}` : cmd.map(shq).join(' ');
  const ready = check.readyCmd !== undefined ? `/bin/sh -c ${shq(check.readyCmd)} >/dev/null 2>&1` : 'test $(( $(date +%s) - t0 )) -ge 2';
  return [
    't0=$(date +%s)',
    `${start} &`,
    'pid=$!',
    'while :; do',
    `  if ${ready}; then exit 0; fi`,
    '  if ! kill -0 "$pid" 2>/dev/null; then wait "$pid"; st=$?',
    `    echo "kiln: the start command exited with status $st before the ready check passed" >&2; exit ${EXITED_EARLY}; fi`,
    '  sleep 0.2 2>/dev/null || sleep 1',
    'done',
  ].join('\n');
}

/**
 * Run the start command in a container of the image and wait for its ready check, with a timeout. A pass is
 * recorded under `<root>/start-checks/` by {@link startCheckKey}, so the same image with the same start command is not
 * run again. A check that fails or times out throws an error naming the check, with the command's last output lines.
 * The container has its own network namespace (only `lo`), so a port check sees only the container's listeners.
 */
export async function proveStartCommand(opts: ProveStartOptions): Promise<StartCheckResult> {
  const { state: s, check } = opts;
  const key = startCheckKey(opts.manifestDigest, check);
  const record = recordPath(s.root, key);
  const started = Date.now();
  if (await fsp.stat(record).then(() => true, () => false)) return { cached: true, durationMs: 0, key };

  const timeoutMs = check.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const c = opts.config.config ?? {};
  const cmd = check.cmd ?? [...(c.Entrypoint ?? []), ...(c.Cmd ?? [])];
  if (cmd.length === 0) throw new BuildError('ERR_KILN_START_CHECK', `ready check ${check.label}: the image has no start command (no setStartCmd, CMD or ENTRYPOINT) to run`);
  const lines: string[] = [];
  // each stream's unfinished line, so lines of stdout and stderr never run into each other
  const partial = { stdout: '', stderr: '' };
  const keep = (stream: 'stdout' | 'stderr', chunk: Buffer): void => {
    opts.onOutput?.(stream, chunk);
    const parts = (partial[stream] + chunk.toString('utf8')).split('\n');
    partial[stream] = parts.pop() ?? '';
    lines.push(...parts);
    if (lines.length > LAST_LINES) lines.splice(0, lines.length - LAST_LINES);
  };
  const ac = new AbortController();
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    ac.abort(new BuildError('ERR_KILN_START_CHECK', `timed out after ${timeoutMs} ms`));
  }, timeoutMs);
  const onOuter = (): void => ac.abort(opts.signal?.reason);
  opts.signal?.addEventListener('abort', onOuter, { once: true });
  if (opts.signal?.aborted) onOuter();
  const startText = typeof cmd === 'string' ? cmd : cmd.join(' ');
  const fail = (why: string): BuildError => {
    const last = [...lines, ...[partial.stdout, partial.stderr].filter(Boolean)].filter((l) => !l.startsWith('kiln: the start command exited')).slice(-LAST_LINES);
    const output = last.length ? `\nlast output:\n${last.map((l) => `  ${l}`).join('\n')}` : '\n(the start command printed nothing)';
    return new BuildError('ERR_KILN_START_CHECK', `start command "${startText}" ${why} (ready check: ${check.label})${output}`, { details: { lastOutput: last, check: check.label } });
  };
  try {
    await withImageRootfs(s, opts.config.rootfs.diff_ids, async (mountpoint) => {
      let exitCode: number;
      try {
        const res = await s.executor.run({
          rootfs: mountpoint,
          args: ['/bin/sh', '-c', wrapperScript(check, cmd)],
          env: c.Env ?? [],
          cwd: c.WorkingDir || '/',
          user: c.User ?? '',
          network: 'none',
          hostname: 'start-check',
          // the sandbox's size: memoryMB as the container's memory limit, cpuCount as its CPU weight (1024 a CPU)
          ...(check.memoryMB || check.cpuCount ? { limits: { ...(check.memoryMB ? { memoryBytes: check.memoryMB * 1024 * 1024 } : {}), ...(check.cpuCount ? { cpuShares: Math.round(check.cpuCount * 1024) } : {}) } } : {}),
          onStdout: (b) => keep('stdout', b),
          onStderr: (b) => keep('stderr', b),
          signal: ac.signal,
        });
        exitCode = res.exitCode;
      } catch (err) {
        if (timedOut) throw fail(`was not ready within ${Math.round(timeoutMs / 100) / 10} s`);
        throw err;
      }
      if (timedOut) throw fail(`was not ready within ${Math.round(timeoutMs / 100) / 10} s`);
      if (exitCode === EXITED_EARLY) {
        const status = /exited with status (\d+)/.exec([...lines, partial.stdout, partial.stderr].join('\n'))?.[1];
        throw fail(`exited${status !== undefined ? ` with status ${status}` : ''} before its ready check passed`);
      }
      if (exitCode !== 0) throw fail(`check failed with status ${exitCode}`);
      await fsp.mkdir(path.dirname(record), { recursive: true });
      const tmp = `${record}.${randomBytes(4).toString('hex')}.tmp`;
      await fsp.writeFile(tmp, JSON.stringify({ image: opts.manifestDigest, cmd, ready: check.readyCmd ?? null, label: check.label, passedAt: new Date().toISOString(), durationMs: Date.now() - started }));
      await fsp.rename(tmp, record);
    });
    return { cached: false, durationMs: Date.now() - started, key };
  } finally {
    clearTimeout(timer);
    opts.signal?.removeEventListener('abort', onOuter);
  }
}
