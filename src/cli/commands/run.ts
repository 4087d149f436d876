import { constants as osConstants } from 'node:os';
import { Option, type Command } from 'commander';
import { BuildError, formatUserError } from '../../errors/index.js';
import { openState } from '../../engine/index.js';
import type { ExecNetwork } from '../../executor/index.js';
import {
  createContainerRecord,
  exitStatusOf,
  parsePublish,
  parseVolumeSpec,
  runRecorded,
  startDetached,
  superviseDetached,
  type ContainerConfig,
} from '../../run/index.js';
import { collect, type CliContext } from '../shared.js';

const SUPERVISE_COMMAND = 'container-supervise';

/** `kiln run [-i] [-t] [-d] [--name N] [-p H:C] [-v NAME:/path] [--rm] [-e K=V] [-w DIR] [-u USER] [--network M] IMAGE [CMD...]` */
export function registerRun(program: Command, cli: CliContext): void {
  program
    .command('run')
    .description('Run a command in a new container from a local image (no daemon)')
    .argument('<image>')
    .argument('[cmd...]', 'command and arguments (default: the image\'s CMD)')
    .option('-i, --interactive', 'keep stdin open: kiln\'s stdin reaches the container')
    .option('-t, --tty', 'give the container a pseudo-terminal (-it for an interactive shell)')
    .option('-d, --detach', 'run in the background and print the container id (see kiln ps, logs, stop, rm)')
    .option('--name <name>', 'name the container (default: a generated name)')
    .option('-p, --publish <[ip:]host:container[/proto]>', 'publish a container port on the host (with --network isolated; repeatable)', collect, [])
    .option('-v, --volume <NAME:/path[:ro]>', 'named volume (created if missing) or /host/dir at a path (repeatable)', collect, [])
    .option('-e, --env <K=V>', 'set an environment variable (repeatable)', collect, [])
    .option('-w, --workdir <dir>', 'working directory inside the container')
    .option('-u, --user <user[:group]>', 'user to run as')
    .option('--entrypoint <cmd>', 'override the image\'s ENTRYPOINT ("" clears it)')
    .option('--hostname <name>', 'container host name')
    .addOption(
      new Option('--network <mode>', 'network: host (share the host\'s), none (loopback only) or isolated (its own, with egress through slirp4netns)')
        .choices(['host', 'none', 'isolated', 'default'])
        .default('host'),
    )
    .option('--rm', 'remove a detached container when it exits (a foreground one always is)')
    .passThroughOptions()
    .addHelpText('after', '\nExit status: the container\'s; 125 when kiln fails, 126 when the command cannot be executed, 127 when it is not found.')
    .action(async (image: string, cmd: string[], o: Record<string, unknown>) => {
      try {
        process.exitCode = await runCommand({ cli, image, cmd, o });
      } catch (err) {
        process.stderr.write(`${formatUserError(err)}\n`);
        const status = (err as { details?: { exitStatus?: unknown } }).details?.exitStatus;
        process.exitCode = typeof status === 'number' ? status : exitStatusOf(err);
      }
    });

  program
    .command(SUPERVISE_COMMAND, { hidden: true })
    .description('(internal) supervise a detached container: the request arrives on stdin')
    .action(async () => {
      const chunks: Buffer[] = [];
      for await (const c of process.stdin) chunks.push(c as Buffer);
      const state = await openState({ ...(cli.root !== undefined ? { root: cli.root } : {}), cleanup: false });
      try {
        await superviseDetached({ state, input: Buffer.concat(chunks).toString('utf8') });
      } finally {
        state.close();
      }
    });
}

async function runCommand(opts: { cli: CliContext; image: string; cmd: string[]; o: Record<string, unknown> }): Promise<number> {
  const { o } = opts;
  const tty = o.tty === true;
  const interactive = o.interactive === true;
  if (tty && interactive && !o.detach && !process.stdin.isTTY) throw new BuildError('ERR_KILN_ARGUMENT', 'the input device is not a TTY (drop -t to pipe input into the container)');
  const network: ExecNetwork = o.network === 'none' || o.network === 'isolated' ? o.network : 'host';
  const portForwards = (o.publish as string[]).map(parsePublish);
  if (portForwards.length > 0 && network !== 'isolated') {
    process.stderr.write(`WARNING: Published ports are discarded when using ${network} network mode${network === 'host' ? ' (the container already uses the host\'s ports)' : ''}\n`);
  }
  const config: ContainerConfig = {
    image: opts.image,
    cmd: opts.cmd,
    ...(o.entrypoint !== undefined ? { entrypoint: String(o.entrypoint) === '' ? [] : [String(o.entrypoint)] } : {}),
    // a bare KEY takes this process's value now, not the supervisor's later
    env: (o.env as string[]).flatMap((e) => (e.includes('=') ? [e] : process.env[e] !== undefined ? [`${e}=${process.env[e]}`] : [])),
    ...(o.workdir ? { workdir: String(o.workdir) } : {}),
    ...(o.user !== undefined ? { user: String(o.user) } : {}),
    ...(o.hostname ? { hostname: String(o.hostname) } : {}),
    network,
    volumes: (o.volume as string[]).map(parseVolumeSpec),
    tty,
    interactive,
    portForwards: network === 'isolated' ? portForwards : [],
  };
  const s = await opts.cli.getState();
  const name = o.name !== undefined ? String(o.name) : undefined;
  if (o.detach) {
    const script = process.argv[1];
    if (!script) throw new BuildError('ERR_KILN_ARGUMENT', 'kiln run -d: cannot tell how kiln was started');
    const { id } = await startDetached({
      request: { ...(name !== undefined ? { name } : {}), config, autoRemove: o.rm === true },
      command: process.execPath,
      args: [...process.execArgv, script, '--root', s.root, SUPERVISE_COMMAND],
    });
    process.stdout.write(`${id}\n`);
    return 0;
  }
  const record = await createContainerRecord({ root: s.root, ...(name !== undefined ? { name } : {}), config, detached: false, autoRemove: true });
  const ac = new AbortController();
  let stoppedBy: NodeJS.Signals | undefined;
  const onSig = (sig: NodeJS.Signals): void => {
    stoppedBy = sig;
    ac.abort(new BuildError('ERR_KILN_ARGUMENT', 'interrupted'));
  };
  process.once('SIGINT', onSig);
  process.once('SIGTERM', onSig);
  try {
    return await runRecorded({
      state: s,
      record,
      ...(interactive ? { stdin: 'inherit' as const } : {}),
      onStdout: (c) => process.stdout.write(c),
      onStderr: (c) => process.stderr.write(c),
      signal: ac.signal,
    });
  } catch (err) {
    // Ctrl-C or a kill of kiln: the container is gone, the status says which signal ended it (130, 143)
    if (stoppedBy) return 128 + (osConstants.signals[stoppedBy] ?? 0);
    throw err;
  } finally {
    process.off('SIGINT', onSig);
    process.off('SIGTERM', onSig);
  }
}
