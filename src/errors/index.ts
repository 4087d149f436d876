export { ERROR_CODES } from './codes.js';
export type { ErrorCode, ErrorKind } from './codes.js';
export {
  BuildError,
  DockerfileError,
  ExecError,
  isNotFound,
  isAlreadyExists,
  isInvalidArgument,
  isFailedPrecondition,
  isUnavailable,
  isBuildError,
  formatUserError,
} from './build-error.js';
export type { BuildErrorOptions, SourceLocation } from './build-error.js';
export { isDiskFull, isNoSpace, noSpaceError, whileWriting, isProgrammerError } from './system.js';
