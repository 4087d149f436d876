import type { Command } from 'commander';
import { checkBuild, formatFinding } from '../../check/index.js';
import type { CliContext } from '../shared.js';

/** `kiln check` */
export function registerCheck(program: Command, cli: CliContext): void {
  program
    .command('check')
    .description('Lint a Dockerfile for cache-hostile patterns (WARN: costs rebuilds, exit status 1; INFO: suggestion)')
    .argument('[context]', 'build context directory', '.')
    .option('-f, --file <file>', 'Dockerfile path (default: CONTEXT/Dockerfile)')
    .option('--no-history', 'do not read build history from the state directory')
    .action(async (context: string, o: { file?: string; history: boolean }) => {
      const builds = o.history ? (await cli.getState()).db.builds.listBuilds() : undefined;
      const { findings } = await checkBuild({ contextDir: context, ...(o.file ? { dockerfile: o.file } : {}), ...(builds ? { builds } : {}) });
      for (const f of findings) process.stdout.write(`${formatFinding(f)}\n`);
      const warns = findings.filter((f) => f.level === 'WARN').length;
      if (findings.length === 0) process.stdout.write('No cache problems found.\n');
      if (warns > 0) process.exitCode = 1;
    });
}
