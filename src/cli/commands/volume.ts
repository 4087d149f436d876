import { Option, type Command } from 'commander';
import { createVolume, inspectVolume, listVolumes, removeVolumes, volumesDiskUsage } from '../../run/index.js';
import type { CliContext } from '../shared.js';
import { formatBytes } from '../../gc/index.js';

/** `kiln volume create|ls|inspect|rm|du` */
export function registerVolume(program: Command, cli: CliContext): void {
  const vol = program.command('volume').description('Manage named volumes (kiln run -v NAME:/path)');
  const root = async (): Promise<string> => (await cli.getState()).root;

  vol
    .command('create')
    .description('Create a volume')
    .argument('<name>')
    .action(async (name: string) => {
      const v = await createVolume({ stateDir: await root(), name });
      process.stdout.write(`${v.name}\n`);
    });

  vol
    .command('ls')
    .description('List volumes')
    .option('-q, --quiet', 'only names')
    .addOption(new Option('--format <format>', 'output format').choices(['table', 'json']).default('table'))
    .action(async (o: { quiet?: boolean; format: string }) => {
      const vols = await listVolumes({ stateDir: await root() });
      if (o.format === 'json') process.stdout.write(`${JSON.stringify(vols, null, 2)}\n`);
      else if (o.quiet) for (const v of vols) process.stdout.write(`${v.name}\n`);
      else {
        process.stdout.write(`${'NAME'.padEnd(32)} ${'CREATED'.padEnd(26)} IN USE\n`);
        for (const v of vols) process.stdout.write(`${v.name.padEnd(32)} ${v.created.padEnd(26)} ${v.inUse ? 'yes' : 'no'}\n`);
      }
    });

  vol
    .command('inspect')
    .description('Show volumes as JSON')
    .argument('<names...>')
    .action(async (names: string[]) => {
      const stateDir = await root();
      const out = [];
      for (const name of names) out.push(await inspectVolume({ stateDir, name }));
      process.stdout.write(`${JSON.stringify(out, null, 2)}\n`);
    });

  vol
    .command('rm')
    .description('Remove volumes and their contents')
    .argument('<names...>')
    .option('-f, --force', 'remove even when a container uses it')
    .action(async (names: string[], o: { force?: boolean }) => {
      for (const n of await removeVolumes({ stateDir: await root(), names, ...(o.force ? { force: true } : {}) })) process.stdout.write(`${n}\n`);
    });

  vol
    .command('du')
    .description('Disk usage of volumes')
    .argument('[names...]')
    .addOption(new Option('--format <format>', 'output format').choices(['table', 'json']).default('table'))
    .action(async (names: string[], o: { format: string }) => {
      const rows = await volumesDiskUsage({ stateDir: await root(), names });
      if (o.format === 'json') process.stdout.write(`${JSON.stringify(rows, null, 2)}\n`);
      else {
        process.stdout.write(`${'NAME'.padEnd(32)} SIZE\n`);
        for (const r of rows) process.stdout.write(`${r.name.padEnd(32)} ${formatBytes(r.size)}\n`);
      }
    });
}
