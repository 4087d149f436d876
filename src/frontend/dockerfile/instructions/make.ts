/**
 * Constructors of typed instructions: the same Command records parseInstruction gives for the text renderCommand
 * writes, made without text (the SDK's steps). Word fields stay unexpanded Dockerfile words, as parsed ones do: a
 * value that must reach the image as written goes through {@link quoteWord} first. `original` (what progress and the
 * image history show) is the rendered text's first line, as the parser keeps it.
 */
import { renderCommand } from './render.js';
import type {
  ArgCommand, CmdCommand, Command, CopyCommand, EntrypointCommand, EnvCommand, ExposeCommand, HealthcheckCommand, KeyValue,
  LabelCommand, Location, RunCommand, ShellCommand, StopSignalCommand, UserCommand, VolumeCommand, WorkdirCommand,
} from './types.js';

/** Where a made record comes from (the SDK caller's file and line); default line 0 of the converted file. */
export interface MakeOptions {
  at?: Location;
}

type Unlocated<C> = Omit<C, 'original' | 'location'>;

function finish<C extends Command>(rec: Unlocated<C>, at: Location | undefined): C {
  const cmd = { ...rec, original: '', location: at ? { ...at } : { startLine: 0, endLine: 0 } } as C;
  cmd.original = renderCommand(cmd).split('\n')[0]!.trim();
  return cmd;
}

/**
 * A value as one Dockerfile word in double quotes. `expand: true` keeps `$NAME` and `${NAME…}` references (ENV),
 * else `$` is literal. Backslashes and quotes are escaped; a newline is written `\n` (two characters), as kiln has
 * always written it.
 *
 * @example
 * quoteWord('two words $A', { expand: false }) // '"two words \\$A"'
 */
export function quoteWord(s: string, opts: { expand: boolean }): string {
  let out = s.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
  if (!opts.expand) out = out.replace(/\$/g, '\\$');
  return `"${out}"`;
}

/** A heredoc delimiter that no line of `body` equals. */
export function heredocDelimiter(body: string, base = 'KILN_EOF'): string {
  let d = base;
  while (body.split('\n').includes(d)) d += '_';
  return d;
}

/** Options of {@link makeRun}: one of `shell`, `exec` or `heredoc`. */
export interface MakeRunOptions extends MakeOptions {
  /** a shell command line (one line; the stage's SHELL runs it) */
  shell?: string;
  /** an argv (exec form) */
  exec?: string[];
  /** a script of several lines, run as the whole command (`RUN <<'DELIM'`): not expanded by the Dockerfile */
  heredoc?: string;
  /** `--mount=` values */
  mounts?: string[];
  /** `--network=`; default not given (`default`) */
  network?: string;
  /** `--security=`; default not given (`sandbox`) */
  security?: string;
  devices?: string[];
}

/**
 * A RUN instruction.
 *
 * @example
 * makeRun({ shell: 'apt-get update', mounts: ['type=cache,target=/var/cache/apt'] })
 */
export function makeRun(o: MakeRunOptions): RunCommand {
  const forms = [o.shell, o.exec, o.heredoc].filter((f) => f !== undefined).length;
  if (forms !== 1) throw new Error('makeRun: give exactly one of shell, exec or heredoc');
  let body: Pick<RunCommand, 'cmdLine' | 'prependShell' | 'files'>;
  if (o.exec) body = { cmdLine: [...o.exec], prependShell: false, files: [] };
  else if (o.heredoc !== undefined) {
    const name = heredocDelimiter(o.heredoc);
    body = { cmdLine: [`<<'${name}'`], prependShell: true, files: [{ name, content: `${o.heredoc}\n`, expand: false, chomp: false, fileDescriptor: 0 }] };
  } else body = { cmdLine: [o.shell!], prependShell: true, files: [] };
  // the flags given, in the order renderCommand writes them (as the parser lists them)
  const flagsUsed = [
    ...(o.mounts?.length ? ['mount'] : []),
    ...(o.network !== undefined ? ['network'] : []),
    ...(o.security !== undefined ? ['security'] : []),
    ...(o.devices?.length ? ['device'] : []),
  ];
  return finish<RunCommand>({
    name: 'run', ...body, mounts: [...(o.mounts ?? [])], network: o.network ?? 'default', security: o.security ?? 'sandbox',
    devices: [...(o.devices ?? [])], flagsUsed,
  }, o.at);
}

/** Options of {@link makeCopy}: words, unexpanded. */
export interface MakeCopyOptions extends MakeOptions {
  /** ADD instead of COPY */
  add?: boolean;
  sources: string[];
  dest: string;
  from?: string;
  chown?: string;
  chmod?: string;
  link?: boolean;
  /** COPY only */
  parents?: boolean;
  excludes?: string[];
  /** ADD only */
  checksum?: string;
}

/**
 * A COPY (or ADD) instruction.
 *
 * @example
 * makeCopy({ sources: ['app/'], dest: '/app/', chown: '1000' })
 */
export function makeCopy(o: MakeCopyOptions): CopyCommand {
  if (o.sources.length === 0) throw new Error('makeCopy: give at least one source');
  return finish<CopyCommand>({
    name: o.add ? 'add' : 'copy', sources: [...o.sources], sourceContents: [], dest: o.dest, from: o.from ?? '', chown: o.chown ?? '',
    chmod: o.chmod ?? '', link: o.link === true, parents: o.parents === true, excludes: [...(o.excludes ?? [])], checksum: o.checksum ?? '',
    keepGitDir: undefined, unpack: undefined,
  }, o.at);
}

/** An ENV instruction; each value a word (see {@link quoteWord}). */
export function makeEnv(o: MakeOptions & { env: KeyValue[] }): EnvCommand {
  if (o.env.length === 0) throw new Error('makeEnv: give at least one variable');
  return finish<EnvCommand>({ name: 'env', env: o.env.map((kv) => ({ ...kv })) }, o.at);
}

/** A LABEL instruction; each value a word (see {@link quoteWord}). */
export function makeLabel(o: MakeOptions & { labels: KeyValue[] }): LabelCommand {
  if (o.labels.length === 0) throw new Error('makeLabel: give at least one label');
  return finish<LabelCommand>({ name: 'label', labels: o.labels.map((kv) => ({ ...kv })) }, o.at);
}

/** An ARG instruction: names with optional default words. */
export function makeArg(o: MakeOptions & { args: Array<{ key: string; value?: string }> }): ArgCommand {
  return finish<ArgCommand>({ name: 'arg', args: o.args.map((a) => ({ key: a.key, value: a.value })) }, o.at);
}

/** A WORKDIR instruction (the path is a word: `$NAME` is expanded). */
export function makeWorkdir(o: MakeOptions & { path: string }): WorkdirCommand {
  return finish<WorkdirCommand>({ name: 'workdir', path: o.path }, o.at);
}

/** A USER instruction. */
export function makeUser(o: MakeOptions & { user: string }): UserCommand {
  return finish<UserCommand>({ name: 'user', user: o.user }, o.at);
}

/** A CMD instruction: an argv (exec form) or a shell command line. */
export function makeCmd(o: MakeOptions & ({ exec: string[] } | { shell: string })): CmdCommand {
  const body = 'exec' in o ? { cmdLine: [...o.exec], prependShell: false } : { cmdLine: [o.shell], prependShell: true };
  return finish<CmdCommand>({ name: 'cmd', ...body, files: [] }, o.at);
}

/** An ENTRYPOINT instruction: an argv (exec form) or a shell command line. */
export function makeEntrypoint(o: MakeOptions & ({ exec: string[] } | { shell: string })): EntrypointCommand {
  const body = 'exec' in o ? { cmdLine: [...o.exec], prependShell: false } : { cmdLine: [o.shell], prependShell: true };
  return finish<EntrypointCommand>({ name: 'entrypoint', ...body, files: [] }, o.at);
}

/** An EXPOSE instruction (ports sorted, as the parser keeps them). */
export function makeExpose(o: MakeOptions & { ports: string[] }): ExposeCommand {
  return finish<ExposeCommand>({ name: 'expose', ports: [...o.ports].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0)) }, o.at);
}

/** A VOLUME instruction. */
export function makeVolume(o: MakeOptions & { volumes: string[] }): VolumeCommand {
  return finish<VolumeCommand>({ name: 'volume', volumes: o.volumes.map((v) => v.trim()) }, o.at);
}

/** A STOPSIGNAL instruction. */
export function makeStopSignal(o: MakeOptions & { signal: string }): StopSignalCommand {
  return finish<StopSignalCommand>({ name: 'stopsignal', signal: o.signal }, o.at);
}

/** A SHELL instruction. */
export function makeShell(o: MakeOptions & { shell: string[] }): ShellCommand {
  return finish<ShellCommand>({ name: 'shell', shell: [...o.shell] }, o.at);
}

/** Options of {@link makeHealthcheck}: durations in nanoseconds. */
export interface MakeHealthcheckOptions extends MakeOptions {
  /** none: `HEALTHCHECK NONE` */
  exec?: string[];
  shell?: string;
  interval?: number;
  timeout?: number;
  startPeriod?: number;
  startInterval?: number;
  retries?: number;
}

/** A HEALTHCHECK instruction. */
export function makeHealthcheck(o: MakeHealthcheckOptions): HealthcheckCommand {
  const test = o.exec ? ['CMD', ...o.exec] : o.shell !== undefined ? ['CMD-SHELL', o.shell] : ['NONE'];
  return finish<HealthcheckCommand>({
    name: 'healthcheck', test, interval: o.interval ?? 0, timeout: o.timeout ?? 0, startPeriod: o.startPeriod ?? 0,
    startInterval: o.startInterval ?? 0, retries: o.retries ?? 0,
  }, o.at);
}
