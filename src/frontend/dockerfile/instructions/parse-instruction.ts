/**
 * Syntax-tree node to typed instruction, following BuildKit's instructions.ParseInstruction: flag sets,
 * argument counts, heredoc attachment, ONBUILD restrictions and HEALTHCHECK options. Words stay unexpanded.
 */
import { DockerfileError } from '../../../errors/index.js';
import { chompHeredocContent, parseHeredocWord, quoteGo } from '../parser/index.js';
import type { Heredoc, Node } from '../parser/index.js';
import { BFlags } from './bflags.js';
import { parseGoDuration } from './duration.js';
import { InstructionProblem } from './problem.js';
import { checkMount, checkNetwork, checkSecurity, parseDevice } from './run-flags.js';
import { withSuggestion } from './suggest.js';
import type {
  ArgCommand, CmdCommand, Command, CopyCommand, EntrypointCommand, EnvCommand, ExposeCommand, FromCommand,
  HealthcheckCommand, Instruction, KeyValue, LabelCommand, MaintainerCommand, OnbuildCommand, RunCommand,
  ShellCommand, ShellDependantCmd, StopSignalCommand, UserCommand, VolumeCommand, WorkdirCommand,
} from './types.js';

/** Options of parseInstruction. */
export interface ParseInstructionOptions {
  /** File name used in error messages. Default `Dockerfile`. */
  file?: string;
}

/** Everything a per-instruction parser needs from the node (BuildKit's parseRequest). */
interface Request {
  node: Node;
  /** keyword as written */
  command: string;
  args: string[];
  heredocs: Heredoc[];
  json: boolean;
  flags: BFlags;
  original: string;
  comments: string[];
}

/** Every instruction keyword, upper-case (for "did you mean"). */
const INSTRUCTION_NAMES = [
  'ADD', 'ARG', 'CMD', 'COPY', 'ENTRYPOINT', 'ENV', 'EXPOSE', 'FROM', 'HEALTHCHECK', 'LABEL', 'MAINTAINER',
  'ONBUILD', 'RUN', 'SHELL', 'STOPSIGNAL', 'USER', 'VOLUME', 'WORKDIR',
];

const VALID_STAGE_NAME = /^[a-z][a-z0-9-_.]*$/;

function nodeArgs(node: Node): string[] {
  const out: string[] = [];
  for (let arg = node.next; arg; arg = arg.next) {
    if (arg.children.length === 0) out.push(arg.value);
    else if (arg.children.length === 1) {
      const sub = arg.children[0];
      out.push(sub.keyword ?? sub.value, ...nodeArgs(sub));
    }
  }
  return out;
}

function requestFromNode(node: Node): Request {
  return {
    node,
    command: node.keyword ?? node.value,
    args: nodeArgs(node),
    heredocs: node.heredocs ?? [],
    json: node.attributes?.json === true,
    flags: new BFlags(node.flags ?? []),
    original: node.original ?? '',
    comments: node.prevComment ?? [],
  };
}

function base<N extends string>(req: Request, name: N) {
  const out = {
    name,
    original: req.original.trim(),
    location: { startLine: req.node.startLine, endLine: req.node.endLine },
  };
  return req.comments.length > 0 ? { ...out, comments: [...req.comments] } : out;
}

const atLeastOne = (c: string) => new InstructionProblem(`${c} requires at least one argument`);
const exactlyOne = (c: string) => new InstructionProblem(`${c} requires exactly one argument`);
const noDestination = (c: string) =>
  new InstructionProblem(`${c} requires at least two arguments, but only one was provided. Destination could not be determined`);
const blankNames = (c: string) => new InstructionProblem(`${c} names can not be blank`);

/** BuildKit's getDocComment: the text after `NAME ` on the first comment line that starts with it. */
export function docComment(comments: string[], name: string): string {
  if (name === '') return '';
  for (const line of comments) {
    if (line.startsWith(name + ' ')) return line.slice(name.length + 1);
  }
  return '';
}

/** Exec form keeps the elements; shell form joins them into one string. */
function jsonArgs(args: string[], json: boolean): string[] {
  if (args.length === 0) return [];
  return json ? args : [args.join(' ')];
}

function parseKvps(args: string[], cmd: string): KeyValue[] {
  if (args.length === 0) throw atLeastOne(cmd);
  if (args.length % 3 !== 0) throw new InstructionProblem(`Bad input to ${cmd}, too many arguments`);
  const out: KeyValue[] = [];
  for (let j = 0; j < args.length; j += 3) {
    if (args[j].length === 0) throw blankNames(cmd);
    const kv: KeyValue = { key: args[j], value: args[j + 1] };
    if (args[j + 2] === '') kv.noDelim = true;
    out.push(kv);
  }
  return out;
}

function parseEnv(req: Request): EnvCommand {
  req.flags.parse();
  return { ...base(req, 'env'), env: parseKvps(req.args, 'ENV') };
}

function parseLabel(req: Request): LabelCommand {
  req.flags.parse();
  return { ...base(req, 'label'), labels: parseKvps(req.args, 'LABEL') };
}

function parseMaintainer(req: Request): MaintainerCommand {
  if (req.args.length !== 1) throw exactlyOne('MAINTAINER');
  req.flags.parse();
  return { ...base(req, 'maintainer'), maintainer: req.args[0] };
}

function safeHeredoc(word: string): Heredoc | undefined {
  try {
    return parseHeredocWord(word);
  } catch {
    return undefined;
  }
}

function sourcesAndDest(req: Request, cmd: string): Pick<CopyCommand, 'sources' | 'sourceContents' | 'dest'> {
  const srcs = req.args.slice(0, -1);
  const dest = req.args[req.args.length - 1];
  if (safeHeredoc(dest)) throw new InstructionProblem(`${cmd} cannot accept a heredoc as a destination`);
  const byName = new Map(req.heredocs.map((h) => [h.name, h]));
  const sources: string[] = [];
  const sourceContents: CopyCommand['sourceContents'] = [];
  for (const src of srcs) {
    const doc = safeHeredoc(src);
    if (!doc) {
      sources.push(src);
      continue;
    }
    let data = byName.get(doc.name)?.content ?? '';
    if (doc.chomp) data = chompHeredocContent(data);
    sourceContents.push({ path: doc.name, data, expand: doc.expand });
  }
  return { sources, sourceContents, dest };
}

function parseAdd(req: Request): CopyCommand {
  if (req.args.length < 2) throw noDestination('ADD');
  const f = req.flags;
  const chown = f.addString('chown');
  const chmod = f.addString('chmod');
  const link = f.addBool('link');
  const keepGitDir = f.addBool('keep-git-dir');
  const checksum = f.addString('checksum');
  const unpack = f.addBool('unpack');
  const exclude = f.addStrings('exclude');
  f.parse();
  return {
    ...base(req, 'add'),
    ...sourcesAndDest(req, 'ADD'),
    from: '',
    chown: chown.value,
    chmod: chmod.value,
    link: link.value === 'true',
    parents: false,
    excludes: exclude.values,
    checksum: checksum.value,
    keepGitDir: f.isUsed('keep-git-dir') ? keepGitDir.value === 'true' : undefined,
    unpack: f.isUsed('unpack') ? unpack.value === 'true' : undefined,
  };
}

function parseCopy(req: Request): CopyCommand {
  if (req.args.length < 2) throw noDestination('COPY');
  const f = req.flags;
  const chown = f.addString('chown');
  const from = f.addString('from');
  const chmod = f.addString('chmod');
  const link = f.addBool('link');
  const exclude = f.addStrings('exclude');
  const parents = f.addBool('parents');
  f.parse();
  return {
    ...base(req, 'copy'),
    ...sourcesAndDest(req, 'COPY'),
    from: from.value,
    chown: chown.value,
    chmod: chmod.value,
    link: link.value === 'true',
    parents: parents.value === 'true',
    excludes: exclude.values,
    checksum: '',
    keepGitDir: undefined,
    unpack: undefined,
  };
}

function parseStageName(args: string[]): string {
  if (args.length === 3 && args[1].toLowerCase() === 'as') {
    const name = args[2].toLowerCase();
    if (!VALID_STAGE_NAME.test(name)) {
      throw new InstructionProblem(
        `invalid name for build stage: ${quoteGo(args[2])}, name can't start with a number or contain symbols`);
    }
    return name;
  }
  if (args.length !== 1) throw new InstructionProblem('FROM requires either one or three arguments');
  return '';
}

function parseFrom(req: Request): FromCommand {
  const stageName = parseStageName(req.args);
  const platform = req.flags.addString('platform');
  req.flags.parse();
  return { ...base(req, 'from'), image: req.args[0], stageName, platform: platform.value };
}

function parseOnbuild(req: Request): OnbuildCommand {
  if (req.args.length === 0) throw atLeastOne('ONBUILD');
  req.flags.parse();
  const trigger = req.args[0].trim().toUpperCase();
  if (trigger === 'ONBUILD') throw new InstructionProblem('Chaining ONBUILD via `ONBUILD ONBUILD` isn\'t allowed');
  if (trigger === 'MAINTAINER' || trigger === 'FROM') {
    throw new InstructionProblem(`${trigger} isn't allowed as an ONBUILD trigger`);
  }
  let expression = req.original.replace(/^[\t\n\f\r ]*ONBUILD[\t\n\f\r ]*/i, '');
  for (const doc of req.heredocs) expression += '\n' + doc.content + doc.name;
  return { ...base(req, 'onbuild'), expression };
}

function parseWorkdir(req: Request): WorkdirCommand {
  if (req.args.length !== 1) throw exactlyOne('WORKDIR');
  req.flags.parse();
  return { ...base(req, 'workdir'), path: req.args[0] };
}

function shellDependant(req: Request): ShellDependantCmd {
  return {
    cmdLine: jsonArgs(req.args, req.json),
    prependShell: !req.json,
    files: req.heredocs.map((h) => ({ ...h })),
  };
}

function parseRun(req: Request): RunCommand {
  const f = req.flags;
  const device = f.addStrings('device');
  const mount = f.addStrings('mount');
  const network = f.addString('network', 'default');
  const security = f.addString('security', 'sandbox');
  f.parse();
  const cmd: RunCommand = {
    ...base(req, 'run'),
    ...shellDependant(req),
    mounts: mount.values,
    network: network.value,
    security: security.value,
    devices: device.values,
    flagsUsed: f.used(),
  };
  for (const d of device.values) parseDevice(d);
  for (const m of mount.values) checkMount(m);
  checkNetwork(network.value);
  checkSecurity(security.value);
  return cmd;
}

function parseCmd(req: Request): CmdCommand {
  req.flags.parse();
  return { ...base(req, 'cmd'), ...shellDependant(req) };
}

function parseEntrypoint(req: Request): EntrypointCommand {
  req.flags.parse();
  return { ...base(req, 'entrypoint'), ...shellDependant(req) };
}

/** A duration flag: '' is 0, 0 stays 0, anything else must be at least 1ms. */
function optInterval(name: string, value: string): number {
  if (value === '') return 0;
  const d = parseGoDuration(value);
  if (d === 0) return 0;
  if (d < 1_000_000) throw new InstructionProblem(`Interval ${quoteGo(name)} cannot be less than 1ms`);
  return d;
}

function parseRetries(value: string): number {
  if (value === '') return 0;
  if (!/^[+-]?[0-9]+$/.test(value)) {
    throw new InstructionProblem(`strconv.ParseInt: parsing ${quoteGo(value)}: invalid syntax`);
  }
  const n = Number.parseInt(value, 10);
  if (n > 2147483647 || n < -2147483648) {
    throw new InstructionProblem(`strconv.ParseInt: parsing ${quoteGo(value)}: value out of range`);
  }
  if (n < 0) throw new InstructionProblem(`--retries cannot be negative (${n})`);
  return n;
}

function parseHealthcheck(req: Request): HealthcheckCommand {
  if (req.args.length === 0) throw atLeastOne('HEALTHCHECK');
  const typ = req.args[0].toUpperCase();
  const args = req.args.slice(1);
  const none = { interval: 0, timeout: 0, startPeriod: 0, startInterval: 0, retries: 0 };
  if (typ === 'NONE') {
    if (args.length !== 0) throw new InstructionProblem('HEALTHCHECK NONE takes no arguments');
    return { ...base(req, 'healthcheck'), test: [typ], ...none };
  }
  const f = req.flags;
  const interval = f.addString('interval');
  const timeout = f.addString('timeout');
  const startPeriod = f.addString('start-period');
  const startInterval = f.addString('start-interval');
  const retries = f.addString('retries');
  f.parse();
  if (typ !== 'CMD') throw new InstructionProblem(`Unknown type ${quoteGo(typ)} in HEALTHCHECK (try CMD)`);
  const cmdSlice = jsonArgs(args, req.json);
  if (cmdSlice.length === 0) throw new InstructionProblem('Missing command after HEALTHCHECK CMD');
  return {
    ...base(req, 'healthcheck'),
    test: [req.json ? 'CMD' : 'CMD-SHELL', ...cmdSlice],
    interval: optInterval('interval', interval.value),
    timeout: optInterval('timeout', timeout.value),
    startPeriod: optInterval('start-period', startPeriod.value),
    startInterval: optInterval('start-interval', startInterval.value),
    retries: parseRetries(retries.value),
  };
}

function parseExpose(req: Request): ExposeCommand {
  if (req.args.length === 0) throw atLeastOne('EXPOSE');
  req.flags.parse();
  const ports = [...req.args].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  return { ...base(req, 'expose'), ports };
}

function parseUser(req: Request): UserCommand {
  if (req.args.length !== 1) throw exactlyOne('USER');
  req.flags.parse();
  return { ...base(req, 'user'), user: req.args[0] };
}

function parseVolume(req: Request): VolumeCommand {
  if (req.args.length === 0) throw atLeastOne('VOLUME');
  req.flags.parse();
  const volumes = req.args.map((v) => v.trim());
  if (volumes.some((v) => v === '')) throw new InstructionProblem('VOLUME specified can not be an empty string');
  return { ...base(req, 'volume'), volumes };
}

function parseStopSignal(req: Request): StopSignalCommand {
  if (req.args.length !== 1) throw exactlyOne('STOPSIGNAL');
  return { ...base(req, 'stopsignal'), signal: req.args[0] };
}

function parseArg(req: Request): ArgCommand {
  if (req.args.length < 1) throw atLeastOne('ARG');
  const args: ArgCommand['args'] = req.args.map((arg) => {
    const eq = arg.indexOf('=');
    const key = eq < 0 ? arg : arg.slice(0, eq);
    if (eq >= 0 && key === '') throw blankNames('ARG');
    const entry: ArgCommand['args'][number] = { key, value: eq < 0 ? undefined : arg.slice(eq + 1) };
    const doc = docComment(req.comments, key);
    if (doc !== '') entry.comment = doc;
    return entry;
  });
  return { ...base(req, 'arg'), args };
}

function parseShell(req: Request): ShellCommand {
  req.flags.parse();
  const shell = jsonArgs(req.args, req.json);
  if (shell.length === 0) throw atLeastOne('SHELL');
  if (!req.json) throw new InstructionProblem('SHELL requires the arguments to be in JSON form');
  return { ...base(req, 'shell'), shell };
}

const PARSERS: Record<string, (req: Request) => Instruction> = {
  add: parseAdd,
  arg: parseArg,
  cmd: parseCmd,
  copy: parseCopy,
  entrypoint: parseEntrypoint,
  env: parseEnv,
  expose: parseExpose,
  from: parseFrom,
  healthcheck: parseHealthcheck,
  label: parseLabel,
  maintainer: parseMaintainer,
  onbuild: parseOnbuild,
  run: parseRun,
  shell: parseShell,
  stopsignal: parseStopSignal,
  user: parseUser,
  volume: parseVolume,
  workdir: parseWorkdir,
};

function locatedError(problem: string, node: Node, file: string): DockerfileError {
  return new DockerfileError(problem, { file, line: node.startLine }, { code: 'ERR_KILN_DOCKERFILE_INSTRUCTION' });
}

/**
 * Turn one instruction node into a typed instruction (a Command, or a FromCommand for FROM).
 * Words are not expanded. Throws DockerfileError (`FILE:LINE: problem`) with BuildKit's messages,
 * such as `unknown instruction: FOO` or `COPY requires at least two arguments, ...`.
 * @example
 * const { ast } = parse('COPY --from=build /out /app\n');
 * const copy = parseInstruction(ast.children[0]); // { name: 'copy', from: 'build', sources: ['/out'], dest: '/app', ... }
 */
export function parseInstruction(node: Node, opts: ParseInstructionOptions = {}): Instruction {
  const file = opts.file ?? 'Dockerfile';
  const req = requestFromNode(node);
  const fn = PARSERS[node.value.toLowerCase()];
  if (!fn) {
    const message = withSuggestion(`unknown instruction: ${req.command}`, {
      value: req.command, options: INSTRUCTION_NAMES, caseSensitive: false,
    });
    throw locatedError(message, node, file);
  }
  try {
    return fn(req);
  } catch (err) {
    if (err instanceof InstructionProblem) throw locatedError(err.message, node, file);
    throw err;
  }
}

/**
 * Like parseInstruction, but only for instructions inside a stage: FROM is an error here
 * (BuildKit's ParseCommand). Useful for ONBUILD triggers.
 */
export function parseCommand(node: Node, opts: ParseInstructionOptions = {}): Command {
  const ins = parseInstruction(node, opts);
  if (ins.name === 'from') throw locatedError('FROM is not a command type', node, opts.file ?? 'Dockerfile');
  return ins;
}

