import type { Directives, Heredoc, Warning } from '../parser/index.js';

/** Where an instruction came from, for errors and progress names. */
export interface Location {
  startLine: number;
  endLine: number;
  /** the file the instruction is in, when it is not the Dockerfile being converted (the SDK caller's file) */
  file?: string;
}

export interface KeyValue {
  key: string;
  value: string;
  /** true when written as `KEY value` (legacy ENV/LABEL form) */
  noDelim?: boolean;
}

/** A shell-or-exec command list (RUN, CMD, ENTRYPOINT, HEALTHCHECK CMD). */
export interface ShellDependantCmd {
  /** Arguments as written; exec form keeps JSON elements, shell form is one string. */
  cmdLine: string[];
  /** true when written in shell form (to be wrapped in SHELL). */
  prependShell: boolean;
  /** Heredoc files (RUN only): the first is the script when the command line is only `<<EOF`. */
  files: Heredoc[];
}

interface Base {
  /** lower-case keyword */
  name: string;
  /** original text of the instruction (for progress and history) */
  original: string;
  location: Location;
  /** comment lines directly above the instruction (without `#`) */
  comments?: string[];
}

export interface FromCommand extends Base {
  name: 'from';
  /** image reference or stage name, not yet expanded */
  image: string;
  /** `AS name`, lower-cased as BuildKit does, or '' */
  stageName: string;
  platform: string;
}

export interface RunCommand extends Base, ShellDependantCmd {
  name: 'run';
  /** raw `--mount=...` values */
  mounts: string[];
  network: string;
  security: string;
  /** raw `--device=...` values */
  devices?: string[];
  /** names of the flags given, without `--`, in order of first use */
  flagsUsed?: string[];
}

export interface CmdCommand extends Base, ShellDependantCmd { name: 'cmd' }
export interface EntrypointCommand extends Base, ShellDependantCmd { name: 'entrypoint' }

export interface HealthcheckCommand extends Base {
  name: 'healthcheck';
  /** `["NONE"]`, `["CMD", ...]` or `["CMD-SHELL", "..."]` */
  test: string[];
  /** durations in nanoseconds (Docker's encoding); 0 = not set */
  interval: number;
  timeout: number;
  startPeriod: number;
  startInterval: number;
  retries: number;
}

export interface SourceFile {
  /** path or URL as written */
  path: string;
}

export interface CopyCommand extends Base {
  name: 'copy' | 'add';
  /** source paths (unexpanded words) */
  sources: string[];
  /** inline heredoc sources */
  sourceContents: Array<{ path: string; data: string; expand: boolean }>;
  dest: string;
  from: string;
  chown: string;
  chmod: string;
  link: boolean;
  parents: boolean;
  excludes: string[];
  /** ADD only */
  checksum: string;
  keepGitDir: boolean | undefined;
  unpack: boolean | undefined;
}

export interface EnvCommand extends Base { name: 'env'; env: KeyValue[] }
export interface LabelCommand extends Base { name: 'label'; labels: KeyValue[] }
export interface ArgCommand extends Base {
  name: 'arg';
  /** `comment` is the doc comment of that name (`# NAME text` above the ARG gives `text`). */
  args: Array<{ key: string; value: string | undefined; comment?: string }>;
}
export interface WorkdirCommand extends Base { name: 'workdir'; path: string }
export interface UserCommand extends Base { name: 'user'; user: string }
export interface ExposeCommand extends Base { name: 'expose'; ports: string[] }
export interface VolumeCommand extends Base { name: 'volume'; volumes: string[] }
export interface StopSignalCommand extends Base { name: 'stopsignal'; signal: string }
export interface ShellCommand extends Base { name: 'shell'; shell: string[] }
export interface OnbuildCommand extends Base { name: 'onbuild'; expression: string }
export interface MaintainerCommand extends Base { name: 'maintainer'; maintainer: string }

export type Command =
  | RunCommand
  | CmdCommand
  | EntrypointCommand
  | HealthcheckCommand
  | CopyCommand
  | EnvCommand
  | LabelCommand
  | ArgCommand
  | WorkdirCommand
  | UserCommand
  | ExposeCommand
  | VolumeCommand
  | StopSignalCommand
  | ShellCommand
  | OnbuildCommand
  | MaintainerCommand;

/** What one instruction node becomes: a command, or the FROM that opens a stage. */
export type Instruction = Command | FromCommand;

export interface Stage {
  /** stage name lower-cased, '' when unnamed */
  name: string;
  /** position among the stages */
  index: number;
  from: FromCommand;
  commands: Command[];
  /** doc comment of the stage, if any */
  comment?: string;
}

export interface ParsedDockerfile {
  /** ARGs before the first FROM */
  metaArgs: ArgCommand[];
  stages: Stage[];
  /** escape character of the file (needed to expand words later) */
  escapeToken?: '\\' | '`';
  /** parser directives found at the top of the file */
  directives?: Directives;
  /** parser warnings, such as empty continuation lines */
  warnings?: Warning[];
}
