import { execFile, spawn } from 'node:child_process';
import { constants as osConstants } from 'node:os';
import { mkdir, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { BuildError } from '../../errors/index.js';
import { createSpec, mountDestinations, toContainerPath } from '../oci-spec/create-spec.js';
import { DEFAULT_HOSTNAME } from '../oci-spec/defaults.js';
import { resolveUser } from '../oci-spec/user.js';
import type { ExecRequest, ExecResult, Executor } from '../types.js';
import { isOwnerAlive, newContainerId, parseContainerId } from './container-id.js';
import { parentTimes, planMountStubs, removeMountStubs } from './mount-stubs.js';
import { writeNetworkFiles } from './network-files.js';
import { ensureDirInRoot, isMissing, readRootFile } from './rootfs-path.js';
import { allowedNofileLimit, ownCapabilities } from './host-limits.js';
import { locateRuntime } from './runtime.js';
import { cleanIsolatedNetworks, startIsolatedNetwork, type IsolatedNetwork } from './slirp.js';
import { listRunCgroups, prepareCgroups, removeRunCgroups, treeBytes, type MemoryGuard } from './limits.js';

/** Options of {@link createRuncExecutor}. */
export interface RuncExecutorOptions {
  /** Directory for bundles (`<stateDir>/bundles/<id>`) and runc's state (`<stateDir>/runc`). */
  stateDir: string;
  /** Runtime binary, a path or a name looked up in PATH and the sbin directories. Default `runc`. */
  runtime?: string;
}

/** What a bundle records so that `cleanup()` can undo a run whose kiln process died. */
interface BundleRecord {
  rootfs: string;
  stubs: string[];
  /** times of the stubs' existing parents before the run: [path, atimeMs, mtimeMs] */
  parentTimes?: Array<[string, number, number]>;
}

const KILL_RETRY_MS = 100;
const KILL_GIVE_UP_MS = 5000;
const DISK_POLL_MS = 250;
const PID_POLL_MS = 25;

/**
 * Create an executor that runs each request as a fresh runc container (`runc run`, no tty, stdin /dev/null).
 *
 * @example
 * const exec = createRuncExecutor({ stateDir: '/var/lib/kiln/exec' });
 * const { exitCode } = await exec.run({ rootfs, args: ['sh', '-c', 'echo hi'], env: [], cwd: '/', onStdout: (b) => process.stdout.write(b) });
 */
export function createRuncExecutor(opts: RuncExecutorOptions): Executor {
  return new RuncExecutor(opts);
}

/** Runs processes in runc containers; holds the located runtime binary. */
export class RuncExecutor implements Executor {
  readonly #stateDir: string;
  readonly #runtimeName: string;
  #runtime: Promise<string> | undefined;
  #nofileLimit: Promise<number> | undefined;

  constructor(opts: RuncExecutorOptions) {
    this.#stateDir = path.resolve(opts.stateDir);
    this.#runtimeName = opts.runtime ?? 'runc';
  }

  get #runcRoot(): string {
    return path.join(this.#stateDir, 'runc');
  }

  get #netnsDir(): string {
    return path.join(this.#stateDir, 'netns');
  }

  get #bundlesDir(): string {
    return path.join(this.#stateDir, 'bundles');
  }

  async run(req: ExecRequest): Promise<ExecResult> {
    req.signal?.throwIfAborted();
    const runtime = await this.#locate();
    await assertDirectory(req.rootfs);
    const id = newContainerId();
    const bundle = path.join(this.#bundlesDir, id);
    await mkdir(bundle, { recursive: true, mode: 0o700 });
    let record: BundleRecord = { rootfs: req.rootfs, stubs: [] };
    let guard: MemoryGuard | undefined;
    let net: IsolatedNetwork | undefined;
    try {
      guard = await prepareCgroups({ id, ...(req.limits ? { limits: req.limits } : {}) });
      if (req.portForwards?.length && req.network !== 'isolated') throw new Error('executor: port forwards need the isolated network');
      if (req.network === 'isolated') {
        net = await startIsolatedNetwork({ dir: this.#netnsDir, id, ...(req.portForwards?.length ? { portForwards: req.portForwards, apiSocket: path.join(bundle, 'slirp.sock') } : {}) });
      }
      record = await this.#prepareBundle({ req, id, bundle, guard, ...(net ? { netnsPath: net.netnsPath } : {}) });
      const res = await this.#runContainer({ req, runtime, id, bundle });
      if (!res.stoppedBy && res.exitCode !== 0 && (await guard.oomKilled(res.exitCode))) return { ...res, stoppedBy: 'memory' };
      return res;
    } finally {
      await net?.release();
      await guard?.release();
      await removeMountStubs({ rootfs: record.rootfs, stubs: record.stubs, ...(record.parentTimes ? { parentTimes: record.parentTimes } : {}) });
      await rm(bundle, { recursive: true, force: true });
    }
  }

  async cleanup(): Promise<void> {
    // runc keeps one directory per container under its root (named by the id); reading it is what `runc list` does,
    // without starting runc on every build: runc is run only for a dead owner's container
    for (const id of await readdirIfAny(this.#runcRoot)) {
      const owner = parseContainerId(id);
      if (owner === undefined || isOwnerAlive(owner)) continue;
      const runtime = await this.#locate();
      await this.#exec(runtime, ['kill', id, 'KILL']).catch(() => undefined);
      await this.#exec(runtime, ['delete', '-f', id]);
    }
    for (const name of await readdirIfAny(this.#bundlesDir)) {
      const owner = parseContainerId(name);
      if (owner === undefined || isOwnerAlive(owner)) continue;
      await this.#undoBundle(path.join(this.#bundlesDir, name));
    }
    await cleanIsolatedNetworks({
      dir: this.#netnsDir,
      isStale: (name) => {
        const owner = parseContainerId(name);
        return owner === undefined || !isOwnerAlive(owner);
      },
    });
    for (const id of await listRunCgroups()) {
      const owner = parseContainerId(id);
      if (owner !== undefined && !isOwnerAlive(owner)) await removeRunCgroups(id);
    }
  }

  #locate(): Promise<string> {
    this.#runtime ??= locateRuntime(this.#runtimeName);
    return this.#runtime;
  }

  /** Resolve the user, create cwd, plan mount stubs and write config.json. Runs before anything mounts. */
  async #prepareBundle(opts: { req: ExecRequest; id: string; bundle: string; guard: MemoryGuard; netnsPath?: string }): Promise<BundleRecord> {
    const { req, bundle, guard } = opts;
    const user = resolveUser({
      user: req.user,
      passwd: await readRootFile(req.rootfs, '/etc/passwd'),
      group: await readRootFile(req.rootfs, '/etc/group'),
    });
    const cwd = toContainerPath(req.cwd || '/');
    await ensureDirInRoot(req.rootfs, cwd).catch((err: NodeJS.ErrnoException) => {
      if (err.code !== 'ENOTDIR' && err.code !== 'EEXIST') throw err;
      throw new BuildError('ERR_KILN_EXEC_START', `working directory ${cwd} is not a directory in the image`, { cause: err });
    });
    const network = req.network ?? 'host';
    const hostname = req.hostname || DEFAULT_HOSTNAME;
    const files = await writeNetworkFiles({ dir: bundle, network, hostname, ...(req.extraHosts ? { extraHosts: req.extraHosts } : {}) });
    const spec = createSpec({
      rootfs: req.rootfs,
      args: req.args,
      env: req.env,
      cwd,
      user,
      mounts: req.mounts,
      network,
      ...(opts.netnsPath ? { netnsPath: opts.netnsPath } : {}),
      hostname,
      resolvConf: files.resolvConf,
      hosts: files.hosts,
      ...(req.insecure ? { insecure: true, insecureCapabilities: await ownCapabilities() } : {}),
      cgroupsPath: guard.cgroupsPath,
      resources: guard.resources,
      nofileLimit: await (this.#nofileLimit ??= allowedNofileLimit()),
      ...(req.ulimits ? { ulimits: req.ulimits } : {}),
      ...(req.shmSizeBytes !== undefined ? { shmSizeBytes: req.shmSizeBytes } : {}),
      ...(req.tty ? { terminal: true } : {}),
    });
    const stubs = await planMountStubs({ rootfs: req.rootfs, destinations: mountDestinations(spec) });
    const record: BundleRecord = { rootfs: req.rootfs, stubs, parentTimes: await parentTimes({ rootfs: req.rootfs, stubs }) };
    await writeFile(path.join(bundle, 'kiln-record.json'), JSON.stringify(record));
    await writeFile(path.join(bundle, 'config.json'), JSON.stringify(spec, null, 2));
    return record;
  }

  async #runContainer(opts: { req: ExecRequest; runtime: string; id: string; bundle: string }): Promise<ExecResult> {
    const { req, runtime, id, bundle } = opts;
    const logFile = path.join(bundle, 'runc.log');
    req.signal?.throwIfAborted();
    const started = Date.now();
    const pidFile = path.join(bundle, 'pid');
    const runcArgs = ['--root', this.#runcRoot, '--log', logFile, '--log-format', 'json', 'run', '--bundle', bundle, ...(req.onStart ? ['--pid-file', pidFile] : []), id];
    const child = await spawnRuntime({ runtime, args: runcArgs, tty: req.tty === true, stdin: req.stdin ?? (req.tty ? 'open' : undefined) });
    const sink = new OutputSink(req);
    child.stdout!.on('data', (c: Buffer) => sink.stdout(c));
    child.stderr!.on('data', (c: Buffer) => sink.stderr(c));
    // an `open` stdin is never written; it ends with the run
    child.stdin?.on('error', () => undefined);
    const exited = waitForExit(child);
    void exited.then(() => child.stdin?.destroy());
    if (req.onStart) void reportStart({ pidFile, exited, onStart: req.onStart });
    let aborted = false;
    let stoppedBy: ExecResult['stoppedBy'];
    let killing = false;
    const kill = (): void => {
      if (killing) return;
      killing = true;
      void this.#killUntilExit({ runtime, id, exited, child });
    };
    const onAbort = (): void => {
      aborted = true;
      kill();
    };
    req.signal?.addEventListener('abort', onAbort, { once: true });
    if (req.signal?.aborted) onAbort();
    const stop = (why: NonNullable<ExecResult['stoppedBy']>): void => {
      stoppedBy ??= why;
      kill();
    };
    const timer = req.limits?.timeoutMs ? setTimeout(() => stop('time'), req.limits.timeoutMs) : undefined;
    const watching = new AbortController();
    const diskWatch = req.limits?.disk ? watchDisk({ ...req.limits.disk, signal: watching.signal, onExceeded: () => stop('disk') }) : undefined;
    try {
      const status = await exited;
      clearTimeout(timer);
      watching.abort();
      await diskWatch;
      if (aborted) throw abortReason(req.signal);
      if (stoppedBy) return { exitCode: status.code ?? 128 + signalNumber(status.signal), durationMs: Date.now() - started, stoppedBy };
      sink.rethrow();
      if (status.spawnError) {
        throw new BuildError('ERR_KILN_EXEC_RUNTIME', `could not start ${runtime}: ${status.spawnError.message}`, { cause: status.spawnError });
      }
      const exitCode = status.code ?? 128 + signalNumber(status.signal);
      if (exitCode === 1) await throwIfRuntimeFailed({ logFile, args: req.args });
      return { exitCode, durationMs: Date.now() - started };
    } finally {
      clearTimeout(timer);
      watching.abort();
      req.signal?.removeEventListener('abort', onAbort);
      // `runc run` deletes its container when it ends (its state folder, ROOT/exec/runc/ID, is gone); runc is
      // started again only after a kill or a runc failure left one behind (one process less per RUN step).
      if (await stat(path.join(this.#runcRoot, id)).then(() => true, () => false)) await this.#exec(runtime, ['delete', '-f', id]).catch(() => undefined);
    }
  }

  /** `runc kill KILL` until `runc run` returns (the container may not exist yet); SIGKILL runc itself as a last resort. */
  async #killUntilExit(opts: { runtime: string; id: string; exited: Promise<unknown>; child: ReturnType<typeof spawn> }): Promise<void> {
    let done = false;
    void opts.exited.then(() => (done = true));
    const deadline = Date.now() + KILL_GIVE_UP_MS;
    while (!done) {
      if (Date.now() > deadline) {
        opts.child.kill('SIGKILL');
        return;
      }
      await this.#exec(opts.runtime, ['kill', opts.id, 'KILL']).catch(() => undefined);
      await Promise.race([opts.exited, delay(KILL_RETRY_MS)]);
    }
  }

  async #undoBundle(bundle: string): Promise<void> {
    try {
      const record = JSON.parse(await readFile(path.join(bundle, 'kiln-record.json'), 'utf8')) as BundleRecord;
      if (await exists(record.rootfs)) await removeMountStubs({ rootfs: record.rootfs, stubs: record.stubs, ...(record.parentTimes ? { parentTimes: record.parentTimes } : {}) });
    } catch (err) {
      if (!isMissing(err) && !(err instanceof SyntaxError)) throw err;
    }
    await rm(bundle, { recursive: true, force: true });
  }

  #exec(runtime: string, args: string[]): Promise<string> {
    return new Promise((resolve, reject) => {
      execFile(runtime, ['--root', this.#runcRoot, ...args], { maxBuffer: 64 << 20 }, (err, stdout, stderr) => {
        if (err) reject(new Error(`${path.basename(runtime)} ${args[0]} failed: ${stderr.trim() || err.message}`, { cause: err }));
        else resolve(stdout);
      });
    });
  }
}

/** Forwards output chunks to the request's callbacks; a throwing callback is reported after the run. */
class OutputSink {
  #error: unknown;
  #failed = false;
  constructor(private readonly req: ExecRequest) {}

  stdout(chunk: Buffer): void {
    this.#call(() => this.req.onStdout?.(chunk));
  }

  stderr(chunk: Buffer): void {
    this.#call(() => this.req.onStderr?.(chunk));
  }

  rethrow(): void {
    if (this.#failed) throw this.#error;
  }

  #call(fn: () => void): void {
    if (this.#failed) return;
    try {
      fn();
    } catch (err) {
      this.#failed = true;
      this.#error = err;
    }
  }
}

/**
 * Start `runc run`. With a terminal, runc needs one of its own to relay the container's (it refuses otherwise, and
 * Node cannot open a pty): util-linux's `script` runs it on a new pty and copies between that and its own stdio.
 */
async function spawnRuntime(opts: { runtime: string; args: string[]; tty: boolean; stdin: ExecRequest['stdin'] }): Promise<ReturnType<typeof spawn>> {
  const stdin = opts.stdin === 'inherit' ? 'inherit' : opts.stdin === 'open' ? 'pipe' : 'ignore';
  if (!opts.tty) return spawn(opts.runtime, opts.args, { stdio: [stdin, 'pipe', 'pipe'] });
  const script = await locateRuntime('script').catch((err: unknown) => {
    throw new BuildError('ERR_KILN_EXEC_RUNTIME', 'a terminal (-t) needs script from util-linux, which is not installed', { cause: err, hint: 'apt-get install bsdutils' });
  });
  const line = [opts.runtime, ...opts.args].map(shellQuote).join(' ');
  return spawn(script, ['--quiet', '--return', '--command', line, '/dev/null'], { stdio: [stdin, 'pipe', 'pipe'], env: { ...process.env, SHELL: '/bin/sh' } });
}

function shellQuote(word: string): string {
  return /^[\w@%+=:,./-]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`;
}

/** Wait for runc's pid file (written once the process runs) and pass on the pid; nothing when runc exits without one. */
async function reportStart(opts: { pidFile: string; exited: Promise<unknown>; onStart: (info: { pid: number }) => void }): Promise<void> {
  let done = false;
  void opts.exited.then(() => (done = true));
  for (;;) {
    // read once more after the exit: a short-lived process may end before a poll sees it start
    const last = done;
    const pid = Number((await readFile(opts.pidFile, 'utf8').catch(() => '')).trim());
    if (pid > 0) {
      opts.onStart({ pid });
      return;
    }
    if (last) return;
    await Promise.race([opts.exited, delay(PID_POLL_MS)]);
  }
}

interface ExitStatus {
  code: number | null;
  signal: NodeJS.Signals | null;
  spawnError?: Error;
}

function waitForExit(child: ReturnType<typeof spawn>): Promise<ExitStatus> {
  return new Promise((resolve) => {
    child.once('error', (err) => resolve({ code: null, signal: null, spawnError: err }));
    child.once('close', (code, signal) => resolve({ code, signal }));
  });
}

/** runc exits 1 and logs an error when it could not start the process (bad cwd, missing executable, ...). */
async function throwIfRuntimeFailed(opts: { logFile: string; args: string[] }): Promise<void> {
  let text: string;
  try {
    text = await readFile(opts.logFile, 'utf8');
  } catch (err) {
    if (isMissing(err)) return;
    throw err;
  }
  const errors = text
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map(parseLogLine)
    .filter((e) => e.level === 'error' || e.level === 'fatal');
  if (errors.length === 0) return;
  const msg = errors[errors.length - 1].msg.replace(/^runc (run|create) failed: /, '');
  throw new BuildError('ERR_KILN_EXEC_START', `could not start ${JSON.stringify(opts.args.join(' '))}: ${msg}`, {
    details: { runtimeLog: errors.map((e) => e.msg) },
  });
}

function parseLogLine(line: string): { level: string; msg: string } {
  try {
    const obj = JSON.parse(line) as { level?: unknown; msg?: unknown };
    return { level: String(obj.level ?? ''), msg: String(obj.msg ?? '') };
  } catch {
    return { level: '', msg: line };
  }
}

function signalNumber(signal: NodeJS.Signals | null): number {
  return signal ? (osConstants.signals[signal] ?? 0) : 0;
}

function abortReason(signal: AbortSignal | undefined): unknown {
  return signal?.reason ?? new DOMException('The operation was aborted', 'AbortError');
}

async function assertDirectory(p: string): Promise<void> {
  const st = await stat(p).catch(() => undefined);
  if (!st?.isDirectory()) throw new Error(`executor: rootfs ${p} is not a directory`);
}

async function exists(p: string): Promise<boolean> {
  return (await stat(p).catch(() => undefined)) !== undefined;
}

async function readdirIfAny(p: string): Promise<string[]> {
  try {
    return await readdir(p);
  } catch (err) {
    if (isMissing(err)) return [];
    throw err;
  }
}

/** Poll the size of `dir` until aborted; call `onExceeded` once it holds more than `maxBytes`. Polls back off with the walk's cost. */
async function watchDisk(opts: { dir: string; maxBytes: number; signal: AbortSignal; onExceeded(): void }): Promise<void> {
  let wait = DISK_POLL_MS;
  const aborted = new Promise((r) => opts.signal.addEventListener('abort', r, { once: true }));
  while (!opts.signal.aborted) {
    await Promise.race([delay(wait), aborted]);
    if (opts.signal.aborted) return;
    const t0 = Date.now();
    if ((await treeBytes(opts.dir, opts.signal)) > opts.maxBytes) {
      opts.onExceeded();
      return;
    }
    wait = Math.max(DISK_POLL_MS, 4 * (Date.now() - t0));
  }
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
