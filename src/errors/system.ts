import { statfsSync } from 'node:fs';
import { BuildError } from './build-error.js';

const NO_SPACE_CODES = new Set(['ENOSPC', 'EDQUOT', 'SQLITE_FULL']);

/** True when `err` (or an error in its `cause` chain) says the disk is full. */
export function isNoSpace(err: unknown): boolean {
  for (let e = err, depth = 0; e && typeof e === 'object' && depth < 8; e = (e as { cause?: unknown }).cause, depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string' && (NO_SPACE_CODES.has(code) || code === 'ERR_KILN_NO_SPACE')) return true;
  }
  return false;
}

/**
 * True when the filesystem holding `dir` has fewer than `minFreeBytes` left for an unprivileged writer (an
 * unreadable filesystem counts as not full). Used to tell a full disk behind an error that does not say ENOSPC.
 */
export function isDiskFull(dir: string, minFreeBytes: number): boolean {
  try {
    const st = statfsSync(dir);
    return st.bavail * st.bsize < minFreeBytes;
  } catch {
    return false;
  }
}

/**
 * The sentence for a full disk: "no space left on device while writing <what> under <where>", with the hint to look
 * at and free kiln's own space (`kiln du`, `kiln prune`).
 *
 * @example
 * throw noSpaceError({ what: 'a layer blob', where: '/var/lib/kiln/content', cause: err });
 */
export function noSpaceError(opts: { what: string; where: string; cause?: unknown }): BuildError {
  if (opts.cause instanceof BuildError && opts.cause.code === 'ERR_KILN_NO_SPACE') return opts.cause;
  return new BuildError('ERR_KILN_NO_SPACE', `no space left on device while writing ${opts.what} under ${opts.where}`, {
    ...(opts.cause === undefined ? {} : { cause: opts.cause }),
    details: { where: opts.where },
  });
}

/**
 * Translate a system error met while writing `what` under `where`: a full disk becomes {@link noSpaceError}; a
 * BuildError or anything else is returned unchanged.
 */
export function whileWriting(err: unknown, opts: { what: string; where: string }): unknown {
  if (err instanceof BuildError && err.code !== 'ERR_KILN_NO_SPACE') return err;
  return isNoSpace(err) ? noSpaceError({ ...opts, cause: err }) : err;
}

/** Programmer errors (a bug in kiln), which must never reach a user as their raw message. */
export function isProgrammerError(err: unknown): boolean {
  return err instanceof TypeError || err instanceof RangeError || err instanceof ReferenceError || err instanceof SyntaxError;
}
