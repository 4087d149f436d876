import type { Command } from 'commander';
import { BuildError } from '../../errors/index.js';
import { formatAgo } from '../../gc/index.js';
import { listContainers, readContainerLog, removeContainer, stopContainer, type ContainerRecord } from '../../run/index.js';
import type { CliContext } from '../shared.js';

/** `kiln ps`, `kiln logs`, `kiln stop`, `kiln rm`: the containers `kiln run` records, as `docker` names them. */
export function registerContainers(program: Command, cli: CliContext): void {
  program
    .command('ps')
    .description('List containers (running ones; -a for all)')
    .option('-a, --all', 'show all containers, exited ones too')
    .option('-q, --quiet', 'only the ids')
    .option('--no-trunc', 'do not truncate ids and commands')
    .option('--format <format>', 'json: one JSON object per line')
    .action(async (o: { all?: boolean; quiet?: boolean; trunc: boolean; format?: string }) => {
      const s = await cli.getState();
      const rows = (await listContainers(s.root)).filter((c) => o.all || c.state !== 'exited');
      const id = (c: ContainerRecord): string => (o.trunc ? c.id.slice(0, 12) : c.id);
      if (o.quiet) {
        for (const c of rows) process.stdout.write(`${id(c)}\n`);
        return;
      }
      const now = Date.now();
      const table = rows.map((c) => ({
        ID: id(c),
        Image: c.config.image,
        Command: quoteCommand(c, o.trunc),
        CreatedAt: formatAgo(Date.parse(c.created), now),
        Status: statusText(c, now),
        Ports: portsText(c),
        Names: c.name,
      }));
      if (o.format === 'json') {
        for (const r of table) process.stdout.write(`${JSON.stringify({ ...r, State: rows[table.indexOf(r)]!.state })}\n`);
        return;
      }
      const head = { ID: 'CONTAINER ID', Image: 'IMAGE', Command: 'COMMAND', CreatedAt: 'CREATED', Status: 'STATUS', Ports: 'PORTS', Names: 'NAMES' };
      const cols = Object.keys(head) as Array<keyof typeof head>;
      const width = (k: keyof typeof head): number => Math.max(head[k].length, ...table.map((r) => r[k].length));
      for (const r of [head, ...table]) process.stdout.write(`${cols.map((k, i) => (i === cols.length - 1 ? r[k] : r[k].padEnd(width(k) + 3))).join('')}\n`);
    });

  program
    .command('logs')
    .description('Print the output of a container (-f: keep following it until it exits)')
    .argument('<container>', 'name or id (a unique prefix of one)')
    .option('-f, --follow', 'follow the output')
    .action(async (ref: string, o: { follow?: boolean }) => {
      const s = await cli.getState();
      const ac = new AbortController();
      const onSig = (): void => ac.abort();
      process.once('SIGINT', onSig);
      try {
        await readContainerLog({ root: s.root, ref, follow: o.follow === true, write: (c) => process.stdout.write(c), signal: ac.signal });
      } finally {
        process.off('SIGINT', onSig);
      }
    });

  program
    .command('stop')
    .description('Stop running containers: SIGTERM, then SIGKILL after a grace period')
    .argument('<container...>', 'names or ids')
    .option('-t, --time <seconds>', 'seconds to wait before killing it', '10')
    .action(async (refs: string[], o: { time: string }) => {
      const s = await cli.getState();
      const seconds = Number(o.time);
      if (!Number.isFinite(seconds) || seconds < 0) throw new BuildError('ERR_KILN_ARGUMENT', `stop -t ${o.time}: not a number of seconds`);
      await eachRef(refs, async (ref) => void (await stopContainer({ root: s.root, ref, timeoutSeconds: seconds })));
    });

  program
    .command('rm')
    .description('Remove containers: their records, log and writes')
    .argument('<container...>', 'names or ids')
    .option('-f, --force', 'kill a running container first')
    .action(async (refs: string[], o: { force?: boolean }) => {
      const s = await cli.getState();
      await eachRef(refs, async (ref) => void (await removeContainer({ root: s.root, ref, force: o.force === true })));
    });
}

/** Run `fn` for each name, printing it when done (as docker does); the first error is thrown after all were tried. */
async function eachRef(refs: string[], fn: (ref: string) => Promise<void>): Promise<void> {
  let first: unknown;
  for (const ref of refs) {
    try {
      await fn(ref);
      process.stdout.write(`${ref}\n`);
    } catch (err) {
      if (first === undefined) first = err;
      else process.stderr.write(`error: ${(err as Error).message}\n`);
    }
  }
  if (first !== undefined) throw first;
}

function quoteCommand(c: ContainerRecord, trunc: boolean): string {
  const words = (c.command ?? [...(c.config.entrypoint ?? []), ...c.config.cmd]).join(' ');
  const text = trunc && words.length > 20 ? `${words.slice(0, 19)}…` : words;
  return `"${text}"`;
}

function statusText(c: ContainerRecord, now: number): string {
  if (c.state === 'created') return 'Created';
  if (c.state === 'running') return `Up ${formatAgo(Date.parse(c.started ?? c.created), now).replace(/ ago$/, '').replace(/^just now$/, 'Less than a second')}`;
  return `Exited (${c.exitCode ?? 255}) ${formatAgo(Date.parse(c.finished ?? c.started ?? c.created), now)}`;
}

function portsText(c: ContainerRecord): string {
  return c.config.portForwards.map((p) => `${p.hostIp ?? '0.0.0.0'}:${p.hostPort}->${p.containerPort}/${p.protocol}`).join(', ');
}
