/**
 * Dockerfile instructions: syntax-tree nodes to typed, unexpanded instructions grouped into stages.
 */
export { parseInstruction, parseCommand } from './parse-instruction.js';
export type { ParseInstructionOptions } from './parse-instruction.js';
export { parseDockerfile, parseDockerfileFromResult } from './parse-dockerfile.js';
export type { ParseDockerfileOptions } from './parse-dockerfile.js';
export { parseGoDuration } from './duration.js';
export { renderCommand } from './render.js';
export {
  heredocDelimiter, makeArg, makeCmd, makeCopy, makeEntrypoint, makeEnv, makeExpose, makeHealthcheck, makeLabel, makeRun, makeShell,
  makeStopSignal, makeUser, makeVolume, makeWorkdir, quoteWord,
} from './make.js';
export type { MakeCopyOptions, MakeHealthcheckOptions, MakeOptions, MakeRunOptions } from './make.js';
export { suggest } from './suggest.js';
export type {
  ArgCommand,
  CmdCommand,
  Command,
  CopyCommand,
  EntrypointCommand,
  EnvCommand,
  ExposeCommand,
  FromCommand,
  HealthcheckCommand,
  Instruction,
  KeyValue,
  LabelCommand,
  Location,
  MaintainerCommand,
  OnbuildCommand,
  ParsedDockerfile,
  RunCommand,
  ShellCommand,
  ShellDependantCmd,
  SourceFile,
  Stage,
  StopSignalCommand,
  UserCommand,
  VolumeCommand,
  WorkdirCommand,
} from './types.js';
