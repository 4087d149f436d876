import { ExecError, BuildError, isDiskFull, noSpaceError } from '../errors/index.js';
import type { ExecOp, Vertex } from '../graph/index.js';
import type { RunContext } from '../solver/index.js';
import type { ExecLimits, ExecResult } from '../executor/index.js';
import { prepareExecMounts } from './exec-mounts.js';
import { commitStep, mountVertexOutput, type OpEnv, type StepOutput } from './op-env.js';
import type { BuildLimits } from './types.js';

const LAST_LINES = 12;

/** The last lines a command printed (kept for its error when it fails). */
function outputTail(): { keep(chunk: Buffer): void; lines(): string[] } {
  const last: string[] = [];
  let partial = '';
  return {
    keep(chunk) {
      const lines = (partial + chunk.toString('utf8')).split('\n');
      partial = lines.pop() ?? '';
      for (const l of lines) {
        last.push(l);
        if (last.length > LAST_LINES) last.shift();
      }
    },
    lines: () => (partial ? [...last, partial] : last).slice(-LAST_LINES),
  };
}

/** RUN: the command in a container over the parent's layers; its changes become the step's layer. */
export async function runExec(env: OpEnv, v: Vertex, op: ExecOp, ctx: RunContext): Promise<StepOutput> {
  const { o } = env;
  const snap = await o.cache.mount(ctx.parent?.layers ?? []);
  const cleanups: Array<() => Promise<void>> = [];
  try {
    const { mounts, env: vars } = await prepareExecMounts({ o, vertex: v, op, ctx, cleanups, mountVertex: (id) => mountVertexOutput(env, id, ctx) });
    const tail = outputTail();
    const res = await o.executor.run({
      rootfs: snap.mountpoint,
      args: op.args,
      env: vars,
      cwd: op.cwd,
      user: op.user,
      mounts,
      network: op.network === 'default' ? (o.network ?? 'host') : op.network,
      ...(op.security === 'insecure' ? { insecure: true } : {}),
      ...(o.limits ? { limits: execLimits({ limits: o.limits, upperDir: snap.upperDir, used: env.disk.used }) } : {}),
      ...(o.ulimits ? { ulimits: o.ulimits } : {}),
      ...(o.extraHosts ? { extraHosts: o.extraHosts } : {}),
      ...(o.shmSizeBytes !== undefined ? { shmSizeBytes: o.shmSizeBytes } : {}),
      onStdout: (c) => {
        tail.keep(c);
        ctx.log('stdout', c);
      },
      onStderr: (c) => {
        tail.keep(c);
        ctx.log('stderr', c);
      },
      signal: ctx.signal,
    });
    if (res.stoppedBy) throw limitError({ v, limits: o.limits ?? {}, stoppedBy: res.stoppedBy });
    if (res.exitCode !== 0) {
      const where = v.location ? `${v.location.file}:${v.location.line}: ` : '';
      const cmd = op.args.length >= 3 && op.args[op.args.length - 2] === '-c' ? op.args[op.args.length - 1]! : JSON.stringify(op.args);
      const failed = new ExecError({
        message: `${where}${v.name.replace(/^\[[^\]]*\]\s*/, '')} did not complete successfully: exit code ${res.exitCode}`,
        exitCode: res.exitCode,
        command: cmd,
        lastOutput: tail.lines(),
      });
      // the command failed because the state root's disk is full (checked before its upper dir is released)
      if (isDiskFull(snap.upperDir, 1024 * 1024)) throw noSpaceError({ what: `the output of ${failed.message.replace(/ did not complete successfully.*$/, '')} (it exited ${res.exitCode})`, where: o.stateDir, cause: failed });
      throw failed;
    }
    for (const c of cleanups.splice(0).reverse()) await c();
    return await commitStep(env, snap, ctx.signal);
  } catch (err) {
    await snap.release();
    throw err;
  } finally {
    for (const c of cleanups.reverse()) await c().catch(() => undefined);
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
