import { Command } from 'commander';
import { BuildError, formatUserError } from '../errors/index.js';
import { defaultRoot, openState, type State } from '../engine/index.js';
import { spawnSync } from 'node:child_process';
import type { CliContext } from './shared.js';
import { restoreHeldCaCerts } from '../proc/index.js';
import { version } from './version.js';
import { extractHost, extractRoot, ignoreBrokenPipes, reportFailure } from './argv.js';
import { registerBuild } from './commands/build.js';
import { registerPlan } from './commands/plan.js';
import { registerTemplate } from './commands/template.js';
import { registerImages } from './commands/images.js';
import { registerRegistry } from './commands/registry.js';
import { registerRun } from './commands/run.js';
import { registerContainers } from './commands/containers.js';
import { registerVolume } from './commands/volume.js';
import { registerCache } from './commands/cache.js';
import { registerDu } from './commands/du.js';
import { registerPrune } from './commands/prune.js';
import { registerHistory } from './commands/history.js';
import { registerCheck } from './commands/check.js';
import { registerAdmin, registerServe } from './commands/serve.js';
import { registerLogin } from './commands/login.js';
import { registerCompletion } from './commands/completion.js';

/** The subcommand names at the start of argv (`build`, `history ls`), for the pointer to their help. */
function commandPath(program: Command, argv: string[]): string[] {
  const names: string[] = [];
  let cmd = program;
  for (const a of argv) {
    if (a.startsWith('-')) continue;
    const sub = cmd.commands.find((c) => c.name() === a || c.aliases().includes(a));
    if (!sub) break;
    names.push(sub.name());
    cmd = sub;
  }
  return names;
}

export async function main(rawArgv: string[]): Promise<number> {
  restoreHeldCaCerts();
  ignoreBrokenPipes();
  const rooted = extractRoot(rawArgv);
  const root = rooted.root;
  let argv: string[];
  let host: string | undefined;
  try {
    ({ argv, host } = extractHost(rooted.argv));
  } catch (err) {
    process.stderr.write(`${formatUserError(err)}\n`);
    return 2;
  }
  let state: State | undefined;
  const getState = async (): Promise<State> => (state ??= await openState(root !== undefined ? { root } : {}));
  const program = new Command();
  program
    .name('kiln')
    .description('Build container images with a correct, explainable, fast cache.\nGlobal options: --root DIR (state directory; also KILN_ROOT), accepted before or after the command;\n--host URL (before the command; also KILN_HOST, with KILN_API_KEY): build on a kiln serve.')
    .version(version(), '-v, --version')
    // an unknown flag gets commander's one-line suggestion and a pointer to the command's help, not the whole help
    .showSuggestionAfterError()
    // program options only before the command name, so `kiln run IMAGE cmd -v` reaches the container's command
    .enablePositionalOptions()
    .configureOutput({ outputError: (str, write) => write(str) })
    .exitOverride();

  const cli: CliContext = { getState, ...(root !== undefined ? { root } : {}), ...(host !== undefined ? { host } : {}) };
  registerBuild(program, cli);
  registerPlan(program, cli);
  registerTemplate(program, cli);
  registerImages(program, cli);
  registerRegistry(program, cli);
  registerRun(program, cli);
  registerContainers(program, cli);
  registerVolume(program, cli);
  registerCache(program, cli);
  registerDu(program, cli);
  registerPrune(program, cli);
  registerHistory(program, cli);
  registerCheck(program, cli);
  registerServe(program, { ...cli, version: version() });
  registerAdmin(program, root !== undefined ? { root } : {});
  registerLogin(program, cli);
  registerCompletion(program);
  program
    .command('version')
    .description('Show kiln\'s version and what it runs on (as docker version)')
    .option('-f, --format <format>', 'json for JSON')
    .action((o: { format?: string }) => {
      const runc = spawnSync('runc', ['--version'], { encoding: 'utf8' });
      const info = {
        Version: version(),
        NodeVersion: process.version,
        Os: process.platform,
        Arch: process.arch === 'x64' ? 'amd64' : process.arch,
        Runtime: runc.status === 0 ? (runc.stdout.split('\n')[0] ?? '').trim() : 'runc: not found',
        StateRoot: root ?? defaultRoot(),
      };
      if (o.format === 'json') process.stdout.write(`${JSON.stringify(info)}\n`);
      else if (o.format !== undefined) throw new BuildError('ERR_KILN_ARGUMENT', `version --format: "${o.format}" is not a format (json)`);
      else {
        process.stdout.write(`kiln:\n Version:     ${info.Version}\n Node:        ${info.NodeVersion}\n OS/Arch:     ${info.Os}/${info.Arch}\n Runtime:     ${info.Runtime}\n State root:  ${info.StateRoot}\n`);
      }
    });

  try {
    await program.parseAsync(argv, { from: 'user' });
    // a command may pass on an exit code (kiln run: the container's)
    return typeof process.exitCode === 'number' ? process.exitCode : 0;
  } catch (err) {
    const e = err as { code?: string; exitCode?: number };
    if (typeof e.code === 'string' && e.code.startsWith('commander.')) {
      if (!['commander.helpDisplayed', 'commander.version', 'commander.help', 'commander.executeSubCommandAsync'].includes(e.code)) {
        process.stderr.write(`Run '${['kiln', ...commandPath(program, argv)].join(' ')} --help' for more information.\n`);
      }
      return e.code === 'commander.helpDisplayed' || e.code === 'commander.version' || e.code === 'commander.help' ? 0 : (e.exitCode ?? 2);
    }
    return reportFailure(err);
  } finally {
    state?.close();
  }
}
