import { Option, type Command } from 'commander';
import { collectInventory, formatAgo, formatBytes, parseFilters, usageReport, type UsageRow } from '../../gc/index.js';
import { collect, type CliContext } from '../shared.js';

const shortId = (id: string): string => id.replace(/^sha256:/, '').slice(0, 12);

function tableRow(r: UsageRow, now: number): string {
  return [
    shortId(r.id).padEnd(13),
    r.type.padEnd(12),
    formatBytes(r.size).padStart(9),
    formatBytes(r.reclaimable).padStart(12),
    (r.shared ? 'shared' : 'exclusive').padEnd(10),
    (r.lastUsed ? formatAgo(r.lastUsed, now) : '-').padEnd(16),
    String(r.useCount ?? '-').padStart(5),
    ` ${r.owner}`,
  ].join(' ');
}

function verboseRow(r: UsageRow, now: number): string {
  const lines: Array<[string, string]> = [
    ['ID', r.id],
    ['Type', r.type],
    ['Owner', r.owner],
    ['Size', formatBytes(r.size)],
    ['Reclaimable', formatBytes(r.reclaimable)],
    ['Shared', r.shared ? 'true' : 'false'],
    ['Last used', r.lastUsed ? `${formatAgo(r.lastUsed, now)} (${new Date(r.lastUsed).toISOString()})` : '-'],
    ['Usage count', String(r.useCount ?? '-')],
    ...Object.entries(r.details).filter(([, v]) => v !== '').map(([k, v]) => [k[0]!.toUpperCase() + k.slice(1), v] as [string, string]),
  ];
  return `${lines.map(([k, v]) => `${`${k}:`.padEnd(14)}${v}`).join('\n')}\n`;
}

/** `kiln du` */
export function registerDu(program: Command, cli: CliContext): void {
  program
    .command('du')
    .description('Show disk usage: every cache record, image layer and cache mount, then Reclaimable and Total')
    .option('--verbose', 'one block per item with every detail')
    .option('--filter <key=value>', 'type=cache|layer|snapshot|blob|cache-mount|image, id=PREFIX, until=DURATION (repeatable)', collect, [])
    .addOption(new Option('--format <format>', 'output format').choices(['table', 'json']).default('table'))
    .action(async (o: { verbose?: boolean; filter: string[]; format: string }) => {
      const filters = parseFilters(o.filter, { allowImage: true });
      const s = await cli.getState();
      const inv = await collectInventory(s);
      const rep = usageReport(inv, filters);
      if (o.format === 'json') {
        process.stdout.write(`${JSON.stringify(rep, null, 2)}\n`);
        return;
      }
      const out: string[] = [];
      if (o.verbose) for (const r of rep.rows) out.push(verboseRow(r, inv.now));
      else {
        out.push(`${'ID'.padEnd(13)} ${'TYPE'.padEnd(12)} ${'SIZE'.padStart(9)} ${'RECLAIMABLE'.padStart(12)} ${'SHARED'.padEnd(10)} ${'LAST USED'.padEnd(16)} ${'USES'.padStart(5)}  OWNER`);
        for (const r of rep.rows) out.push(tableRow(r, inv.now));
        out.push('');
      }
      out.push(`${'Shared:'.padEnd(14)}${formatBytes(rep.shared)}`);
      out.push(`${'Private:'.padEnd(14)}${formatBytes(rep.private)}`);
      out.push(`${'Metadata:'.padEnd(14)}${formatBytes(rep.metadata)}`);
      out.push(`${'Reclaimable:'.padEnd(14)}${formatBytes(rep.reclaimable)}`);
      out.push(`${'Total:'.padEnd(14)}${formatBytes(rep.total)}`);
      process.stdout.write(`${out.join('\n')}\n`);
    });
}
