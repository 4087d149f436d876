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
  const e = err as { code?: string; message?: string };
  if (e && typeof e.code === 'string' && typeof e.message === 'string') return `error: ${e.message}`;
  return `error: ${e?.message ?? String(err)}`;
}
