import { Option, type Command } from 'commander';
import { listCacheMounts, removeCacheMounts } from '../../cache/index.js';
import type { CliContext } from '../shared.js';
import { formatBytes } from '../../gc/index.js';

/** `kiln cache ls|rm`: the cache mounts (RUN --mount=type=cache) kept in the state directory. */
export function registerCache(program: Command, cli: CliContext): void {
  const cache = program.command('cache').description('Manage cache mounts (RUN --mount=type=cache)');
  const root = async (): Promise<string> => (await cli.getState()).root;

  cache
    .command('ls')
    .description('List cache mounts: id, size, last use, builds that used them')
    .option('-q, --quiet', 'only ids')
    .addOption(new Option('--format <format>', 'output format').choices(['table', 'json']).default('table'))
    .action(async (o: { quiet?: boolean; format: string }) => {
      const rows = await listCacheMounts({ stateDir: await root() });
      if (o.format === 'json') process.stdout.write(`${JSON.stringify(rows, null, 2)}\n`);
      else if (o.quiet) for (const r of rows) process.stdout.write(`${r.id}\n`);
      else {
        process.stdout.write(`${'ID'.padEnd(32)} ${'SIZE'.padEnd(9)} ${'LAST USED'.padEnd(24)} ${'USES'.padEnd(5)} BUILDS\n`);
        for (const r of rows) {
          const id = r.key === r.id ? r.id : `${r.id} (seeded)`;
          const builds = r.builds.slice(0, 3).join(',') + (r.builds.length > 3 ? `,+${r.builds.length - 3}` : '');
          const used = new Date(r.lastUsed).toISOString().replace(/\.\d{3}Z$/, 'Z');
          process.stdout.write(`${id.padEnd(32)} ${formatBytes(r.size).padEnd(9)} ${used.padEnd(24)} ${String(r.uses).padEnd(5)} ${builds}${r.inUse ? '  (in use)' : ''}\n`);
        }
      }
    });

  cache
    .command('rm')
    .description('Remove cache mounts by id')
    .argument('<ids...>')
    .option('-f, --force', 'remove even when a running build uses it')
    .action(async (ids: string[], o: { force?: boolean }) => {
      const removed = await removeCacheMounts({ stateDir: await root(), ids, ...(o.force ? { force: true } : {}) });
      for (const k of removed) process.stdout.write(`${k}\n`);
    });
}
