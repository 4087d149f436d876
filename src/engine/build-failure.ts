/** How a build fails: one sentence for the error, its record kept even on a full disk, and no silent stall. */
import { BuildError, ExecError, isBuildError, isDiskFull, isNoSpace, noSpaceError } from '../errors/index.js';
import type { BuildRecord } from '../metadata/index.js';
import type { Records, State } from './state.js';

/** A build's record while it runs. */
export type BuildRecordDraft = BuildRecord;

/**
 * The last line of defence for "a failure is never a success": if every promise of this build is left pending (a
 * stream that never ends) the process would otherwise exit 0 with no image; it is a failure, said so and recorded.
 */
export function stallGuard(s: Records<'builds'>, record: BuildRecordDraft): () => void {
  return () => {
    if (record.status !== 'running') return;
    record.status = 'failed';
    record.finished = Date.now();
    record.error = 'the build stopped without finishing (an internal stall)';
    try {
      s.db.builds.finishBuildRecord({ id: record.id, status: 'failed', finished: record.finished, error: record.error });
    } catch {
      /* recorded as interrupted at the next start */
    }
    process.stderr.write(`error: ${record.error}; rerun with KILN_DEBUG=1 and report it\n`);
    process.exitCode = 1;
  };
}

/** Builds of this process still running, told when the event loop empties under them (one listener for all). */
const stallWatchers = new Set<() => void>();
export function watchStall(fn: () => void, on: boolean): void {
  if (on) {
    if (stallWatchers.size === 0) process.on('beforeExit', runStallWatchers);
    stallWatchers.add(fn);
  } else {
    stallWatchers.delete(fn);
    if (stallWatchers.size === 0) process.off('beforeExit', runStallWatchers);
  }
}
function runStallWatchers(): void {
  for (const fn of [...stallWatchers]) {
    stallWatchers.delete(fn);
    fn();
  }
  process.off('beforeExit', runStallWatchers);
}

/** Write a failed build's record; on a full disk the reserve under the root is given back to make room. */
export function recordFailure(s: Records<'builds'> & Pick<State, 'releaseReserve'>, record: BuildRecordDraft, noSpace: boolean): void {
  if (noSpace) s.releaseReserve();
  try {
    s.db.builds.putBuild(record);
    return;
  } catch (err) {
    if (!isNoSpace(err)) return; // the database may be closing
  }
  s.releaseReserve();
  try {
    s.db.builds.finishBuildRecord({ id: record.id, status: record.status, finished: record.finished ?? Date.now(), error: record.error });
  } catch {
    /* still no room: the next start marks it interrupted */
  }
}

/**
 * The error a failed build reports, as one sentence: a signal is "interrupted", a full disk (a raw ENOSPC, SQLite's
 * SQLITE_FULL, or any failure — a RUN that could not write, a bug tripped by a short write — while the state
 * root's filesystem has no room left) is "no space left on device while writing ... under <root>".
 */
export function failureOf(o: { state: Pick<State, 'root'>; err: unknown; interrupted: boolean; reason: unknown }): unknown {
  const { err } = o;
  if (o.interrupted) {
    if (isBuildError(o.reason) && (o.reason.code === 'ERR_KILN_INTERRUPTED' || o.reason.code === 'ERR_KILN_LIMIT_EXCEEDED')) return o.reason;
    return new BuildError('ERR_KILN_INTERRUPTED', 'build interrupted', { cause: err });
  }
  if (isBuildError(err) && err.code === 'ERR_KILN_NO_SPACE') return err;
  const full = isNoSpace(err) || isDiskFull(o.state.root, 1024 * 1024);
  if (!full || (isBuildError(err) && !(err instanceof ExecError) && err.kind === 'invalid-argument')) return err;
  const what = err instanceof ExecError ? `the output of a RUN step (${err.message})` : "the build's data";
  return noSpaceError({ what, where: o.state.root, cause: err });
}
