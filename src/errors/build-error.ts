import { ERROR_CODES, type ErrorCode, type ErrorKind } from './codes.js';

export interface BuildErrorOptions {
  hint?: string;
  cause?: unknown;
  details?: Record<string, unknown>;
}

/** Base class of every user-facing kiln error. */
export class BuildError extends Error {
  readonly code: ErrorCode;
  readonly kind: ErrorKind;
  readonly hint: string;
  readonly details: Record<string, unknown>;

  constructor(code: ErrorCode, message: string, opts: BuildErrorOptions = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'BuildError';
    this.code = code;
    this.kind = ERROR_CODES[code].kind;
    this.hint = opts.hint ?? ERROR_CODES[code].hint;
    this.details = opts.details ?? {};
  }
}

export interface SourceLocation {
  file: string;
  line: number;
  column?: number;
}

/** An error located in a Dockerfile (or SDK template) line. Message reads `FILE:LINE: problem`. */
export class DockerfileError extends BuildError {
  readonly location: SourceLocation | undefined;
  readonly problem: string;
  constructor(problem: string, location?: SourceLocation, opts: BuildErrorOptions & { code?: ErrorCode } = {}) {
    super(opts.code ?? 'ERR_KILN_DOCKERFILE_SYNTAX', location ? `${location.file}:${location.line}: ${problem}` : problem, opts);
    this.name = 'DockerfileError';
    this.location = location;
    this.problem = problem;
  }
}

/** A RUN step whose process exited non-zero. */
export class ExecError extends BuildError {
  readonly exitCode: number;
  readonly command: string;
  readonly lastOutput: string[];
  constructor(opts: { message: string; exitCode: number; command: string; lastOutput: string[] }) {
    super('ERR_KILN_EXEC_FAILED', opts.message, { details: { exitCode: opts.exitCode } });
    this.name = 'ExecError';
    this.exitCode = opts.exitCode;
    this.command = opts.command;
    this.lastOutput = opts.lastOutput;
  }
}

function hasKind(err: unknown, kind: ErrorKind): boolean {
  return typeof err === 'object' && err !== null && (err as { kind?: unknown }).kind === kind;
}

export const isNotFound = (err: unknown): boolean => hasKind(err, 'not-found');
export const isAlreadyExists = (err: unknown): boolean => hasKind(err, 'already-exists');
export const isInvalidArgument = (err: unknown): boolean => hasKind(err, 'invalid-argument');
export const isFailedPrecondition = (err: unknown): boolean => hasKind(err, 'failed-precondition');
export const isUnavailable = (err: unknown): boolean => hasKind(err, 'unavailable');

export function isBuildError(err: unknown): err is BuildError {
  return typeof err === 'object' && err !== null && typeof (err as { code?: unknown }).code === 'string' &&
    String((err as { code: string }).code).startsWith('ERR_KILN_');
}

/** Turn a BuildError into the paragraph the CLI prints. Unknown errors keep their message only. */
export function formatUserError(err: unknown): string {
  if (isBuildError(err)) {
    const lines = [`error: ${err.message}`];
    if (err instanceof ExecError && err.lastOutput.length > 0) {
      lines.push('last output:');
      for (const l of err.lastOutput) lines.push(`  ${l}`);
    }
    if (err.hint) lines.push(`hint: ${err.hint} (${err.code})`);
    return lines.join('\n');
  }
  const e = err as { code?: string; message?: string; syscall?: string; path?: string };
  if (e instanceof TypeError || e instanceof RangeError || e instanceof ReferenceError || e instanceof SyntaxError) {
    // a bug in kiln: its raw message ("Cannot read properties of undefined ...") means nothing to a user
    return `error: kiln stopped on an internal error (${e.name}); rerun with KILN_DEBUG=1 to see where, and report it\nhint: ${ERROR_CODES.ERR_KILN_INTERNAL.hint} (ERR_KILN_INTERNAL)`;
  }
  if (e && (e.code === 'ENOSPC' || e.code === 'EDQUOT')) {
    const where = typeof e.path === 'string' ? e.path.replace(/\/[^/]*$/, '') || '/' : 'the state directory';
    return `error: no space left on device while writing ${typeof e.path === 'string' ? e.path : 'a file'} under ${where}\nhint: ${ERROR_CODES.ERR_KILN_NO_SPACE.hint} (ERR_KILN_NO_SPACE)`;
  }
  if (e && typeof e.code === 'string' && typeof e.message === 'string') return `error: ${e.message}`;
  if (e === undefined || e === null) return 'error: kiln stopped on an internal error (no error value); rerun with KILN_DEBUG=1 and report it';
  return `error: ${e?.message ?? String(err)}`;
}
