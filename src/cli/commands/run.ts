import { Option, type Command } from 'commander';
import { BuildError } from '../../errors/index.js';
import { parseVolumeSpec, runContainer } from '../../run/index.js';
import { collect, type CliContext } from '../shared.js';

/** `kiln run [-v NAME:/path] [--rm] [-e K=V] [-w DIR] [-u USER] [--network host|none] IMAGE [CMD...]` */
export function registerRun(program: Command, cli: CliContext): void {
  program
    .command('run')
    .description('Run a command in a new container from a local image (no daemon); its changes are discarded on exit')
    .argument('<image>')
    .argument('[cmd...]', 'command and arguments (default: the image\'s CMD)')
    .option('-v, --volume <NAME:/path[:ro]>', 'named volume (created if missing) or /host/dir at a path (repeatable)', collect, [])
    .option('-e, --env <K=V>', 'set an environment variable (repeatable)', collect, [])
    .option('-w, --workdir <dir>', 'working directory inside the container')
    .option('-u, --user <user[:group]>', 'user to run as')
    .option('--entrypoint <cmd>', 'override the image\'s ENTRYPOINT ("" clears it)')
    .option('--hostname <name>', 'container host name')
    .addOption(new Option('--network <mode>', 'network: host (share the host\'s) or none (loopback only)').choices(['host', 'none', 'default']).default('host'))
    .option('--rm', 'remove the container when it exits (always done: containers are never kept)')
    .passThroughOptions()
    .action(async (image: string, cmd: string[], o: Record<string, unknown>) => {
      const s = await cli.getState();
      const ac = new AbortController();
      const onSig = (): void => ac.abort(new BuildError('ERR_KILN_ARGUMENT', 'interrupted'));
      process.once('SIGINT', onSig);
      process.once('SIGTERM', onSig);
      try {
        const code = await runContainer({
          state: s,
          image,
          cmd,
          ...(o.entrypoint !== undefined ? { entrypoint: String(o.entrypoint) === '' ? [] : [String(o.entrypoint)] } : {}),
          env: o.env as string[],
          ...(o.workdir ? { workdir: String(o.workdir) } : {}),
          ...(o.user !== undefined ? { user: String(o.user) } : {}),
          ...(o.hostname ? { hostname: String(o.hostname) } : {}),
          network: o.network === 'none' ? 'none' : 'host',
          volumes: (o.volume as string[]).map(parseVolumeSpec),
          onStdout: (c) => process.stdout.write(c),
          onStderr: (c) => process.stderr.write(c),
          signal: ac.signal,
        });
        process.exitCode = code;
      } finally {
        process.off('SIGINT', onSig);
        process.off('SIGTERM', onSig);
      }
    });
}
