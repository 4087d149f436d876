/**
 * A recorded container's life: run it under its record (created → running → exited), stop it, remove it, read its
 * log. The process that runs it is its record's supervisor: `kiln run` itself, or for `-d` the detached
 * supervisor (detached.ts).
 */
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { BuildError } from '../errors/index.js';
import { ownerAlive, processStartTime } from '../proc/index.js';
import type { State } from '../engine/index.js';
import { containerDir, containerLog, currentState, findContainer, removeContainerFiles, writeContainerRecord, type ContainerRecord } from './containers.js';
import { runContainer } from './run.js';

/** Exit statuses of `kiln run` for its own failures, as `docker run`'s. */
export const EXIT_KILN_ERROR = 125;
export const EXIT_NOT_EXECUTABLE = 126;
export const EXIT_NOT_FOUND = 127;
const EXIT_KILLED = 137;

const POLL_MS = 100;

/**
 * The exit status `docker run` gives a failure to start: 127 when the command does not exist, 126 when it cannot be
 * executed, 125 for anything else (kiln's own errors).
 */
export function exitStatusOf(err: unknown): number {
  const e = err as { code?: string; message?: string };
  if (e.code !== 'ERR_KILN_EXEC_START') return EXIT_KILN_ERROR;
  const msg = e.message ?? '';
  if (/executable file not found|no such file or directory/i.test(msg)) return EXIT_NOT_FOUND;
  if (/permission denied|is a directory|exec format error/i.test(msg)) return EXIT_NOT_EXECUTABLE;
  return EXIT_KILN_ERROR;
}

/** Options of {@link runRecorded}. */
export interface RunRecordedOptions {
  state: State;
  record: ContainerRecord;
  /** `inherit` for a foreground `-i`; detached `-i`/`-t` keep a pipe open */
  stdin?: 'inherit' | 'open';
  onStdout(chunk: Buffer): void;
  onStderr(chunk: Buffer): void;
  /** called once the container's process runs */
  onStarted?: () => void;
  signal?: AbortSignal;
}

/**
 * Run a recorded container and keep its record current. A foreground container's record goes when it exits; a
 * detached one's stays (with its writes in `upper/`) unless `--rm`. Resolves with the exit code; a failure to start
 * is recorded (as exited with {@link exitStatusOf}) and thrown.
 */
export async function runRecorded(opts: RunRecordedOptions): Promise<number> {
  const root = opts.state.root;
  let rec = opts.record;
  const keep = rec.detached && !rec.autoRemove;
  const save = async (patch: Partial<ContainerRecord>): Promise<void> => {
    rec = { ...rec, ...patch };
    await writeContainerRecord(root, rec);
  };
  const c = rec.config;
  let ended = false;
  try {
    let started = Promise.resolve();
    const code = await runContainer({
      state: opts.state,
      image: c.image,
      cmd: c.cmd,
      ...(c.entrypoint ? { entrypoint: c.entrypoint } : {}),
      env: c.tty && !c.env.some((e) => e.startsWith('TERM=')) ? [...c.env, 'TERM=xterm'] : c.env,
      ...(c.workdir ? { workdir: c.workdir } : {}),
      ...(c.user !== undefined ? { user: c.user } : {}),
      network: c.network,
      volumes: c.volumes,
      ...(c.hostname ? { hostname: c.hostname } : {}),
      ...(c.tty ? { tty: true } : {}),
      ...(opts.stdin ? { stdin: opts.stdin } : {}),
      ...(c.network === 'isolated' && c.portForwards.length ? { portForwards: c.portForwards } : {}),
      ...(keep ? { keepUpperIn: path.join(containerDir(root, rec.id), 'upper') } : {}),
      onStart: ({ pid, args }) => {
        if (ended) return;
        const patch = { state: 'running' as const, command: args, started: new Date().toISOString(), process: { pid, startTime: processStartTime(pid) ?? '' } };
        started = save(patch).then(() => opts.onStarted?.());
      },
      onStdout: opts.onStdout,
      onStderr: opts.onStderr,
      ...(opts.signal ? { signal: opts.signal } : {}),
    });
    ended = true;
    await started;
    await finish({ root, rec, keep, patch: { exitCode: code } });
    return code;
  } catch (err) {
    ended = true;
    // stopped by its supervisor's signal: the container was killed (128 + SIGKILL), as docker reports it
    const status = opts.signal?.aborted ? EXIT_KILLED : exitStatusOf(err);
    // like docker: a command that cannot start leaves its container (126, 127); kiln's own failures leave none
    await finish({ root, rec, keep: keep && status !== EXIT_KILN_ERROR, patch: { exitCode: status, error: (err as Error).message } }).catch(() => undefined);
    throw err;
  }
}

async function finish(opts: { root: string; rec: ContainerRecord; keep: boolean; patch: Partial<ContainerRecord> }): Promise<void> {
  if (!opts.keep) {
    await removeContainerFiles(opts.root, opts.rec);
    return;
  }
  await writeContainerRecord(opts.root, { ...opts.rec, ...opts.patch, state: 'exited', finished: new Date().toISOString() });
}

/**
 * `kiln stop`: SIGTERM to the container's process, SIGKILL after `timeoutSeconds`, then wait for its supervisor to
 * record the end. A container that is not running is left as it is.
 */
export async function stopContainer(opts: { root: string; ref: string; timeoutSeconds: number }): Promise<ContainerRecord> {
  let rec = await findContainer(opts.root, opts.ref);
  if (rec.state !== 'running' && rec.state !== 'created') return rec;
  signalContainer(rec, 'SIGTERM');
  rec = await waitForEnd({ root: opts.root, rec, ms: opts.timeoutSeconds * 1000 });
  if (rec.state === 'exited') return rec;
  signalContainer(rec, 'SIGKILL');
  return waitForEnd({ root: opts.root, rec, ms: 30_000 });
}

/**
 * `kiln rm`: remove a container's records, log and writes. A running one is refused unless `force` (then killed).
 *
 * @throws BuildError ERR_KILN_CONTAINER_RUNNING
 */
export async function removeContainer(opts: { root: string; ref: string; force: boolean }): Promise<ContainerRecord> {
  let rec = await findContainer(opts.root, opts.ref);
  if (rec.state !== 'exited') {
    if (!opts.force) {
      throw new BuildError('ERR_KILN_CONTAINER_RUNNING', `cannot remove container ${opts.ref}: it is ${rec.state === 'running' ? 'running' : 'starting'}`);
    }
    signalContainer(rec, 'SIGKILL');
    rec = await waitForEnd({ root: opts.root, rec, ms: 30_000 });
  } else if (rec.process && ownerAlive(rec.process)) {
    // its supervisor died and left the process running: it goes too
    process.kill(rec.process.pid, 'SIGKILL');
  }
  await removeContainerFiles(opts.root, rec);
  return rec;
}

function signalContainer(rec: ContainerRecord, signal: NodeJS.Signals): void {
  if (rec.process && ownerAlive(rec.process)) {
    try {
      process.kill(rec.process.pid, signal);
    } catch {
      /* gone meanwhile */
    }
  } else if (signal === 'SIGKILL' && ownerAlive(rec.supervisor)) {
    // not started yet: its supervisor stops the start and records the end
    process.kill(rec.supervisor.pid, 'SIGTERM');
  }
}

/** Poll the record until it is exited (or its supervisor is gone: {@link currentState}) or `ms` pass. */
async function waitForEnd(opts: { root: string; rec: ContainerRecord; ms: number }): Promise<ContainerRecord> {
  const deadline = Date.now() + opts.ms;
  let rec = opts.rec;
  for (;;) {
    rec = await findContainer(opts.root, rec.id).catch(() => ({ ...rec, state: 'exited' as const }));
    if (rec.state === 'exited' || Date.now() >= deadline) return rec;
    await new Promise((r) => setTimeout(r, POLL_MS));
  }
}

/**
 * `kiln logs`: write a container's output to `write`; with `follow`, keep writing what comes until it exits.
 */
export async function readContainerLog(opts: { root: string; ref: string; follow: boolean; write(chunk: Buffer): void; signal?: AbortSignal }): Promise<void> {
  const rec = await findContainer(opts.root, opts.ref);
  const file = containerLog(opts.root, rec.id);
  let offset = 0;
  for (;;) {
    // the state before the file: whatever was written before the end is then read
    const state = (await currentStateOf(opts.root, rec.id))?.state ?? 'exited';
    offset += await copyFrom({ file, offset, write: opts.write });
    if (!opts.follow || state === 'exited' || opts.signal?.aborted) return;
    await new Promise((r) => setTimeout(r, POLL_MS));
  }
}

async function currentStateOf(root: string, id: string): Promise<ContainerRecord | undefined> {
  try {
    return currentState(JSON.parse(await fsp.readFile(path.join(containerDir(root, id), 'state.json'), 'utf8')) as ContainerRecord);
  } catch {
    return undefined;
  }
}

async function copyFrom(opts: { file: string; offset: number; write(chunk: Buffer): void }): Promise<number> {
  const fh = await fsp.open(opts.file, 'r').catch(() => undefined);
  if (!fh) return 0;
  try {
    let read = 0;
    const buf = Buffer.alloc(64 * 1024);
    for (;;) {
      const { bytesRead } = await fh.read(buf, 0, buf.length, opts.offset + read);
      if (bytesRead === 0) return read;
      opts.write(Buffer.from(buf.subarray(0, bytesRead)));
      read += bytesRead;
    }
  } finally {
    await fh.close();
  }
}
