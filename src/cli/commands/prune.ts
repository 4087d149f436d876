import type { Command } from 'commander';
import { BuildError } from '../../errors/index.js';
import { formatBytes, parseFilters, parseSize, parseSpace, previewPrune, prune, resolveSpace, diskStats, type PlanOptions, type PruneAction, type SpaceLimits } from '../../gc/index.js';
import { collect, type CliContext } from '../shared.js';

const SPACE_HELP = `
Space options (sizes like 500MB, 20GB, 2GiB; kB/MB/GB are powers of 1000, KiB/MiB/GiB of 1024).
Each one makes prune delete least-recently-used cache only until the target is met:
  --max-used-space SIZE   delete until kiln's state directory uses at most SIZE in total.
  --keep-storage SIZE     the older name of --max-used-space: it means "let the cache keep at most SIZE",
                          NOT "keep SIZE of disk free" (that is --min-free-space).
  --min-free-space SIZE|PCT
                          delete until the disk holding the state directory has at least SIZE (or PCT% of
                          the disk) free.
  --reserved-space SIZE   a floor: never delete the cache below SIZE, even if --min-free-space is not met.
Without a space option, prune deletes everything its filters select.

What is never deleted: what a tagged image needs (manifest, config, layer blobs), and what a running build
uses (its lease: everything it created or used since it started) — prune is safe while builds run.
Without --all, prune keeps cache mounts, the unpacked copies of tagged images' layers and the cache
records of steps whose layer a tagged image shares; --all deletes those too.

Filters (repeatable): type=cache|layer|snapshot|blob|cache-mount (BuildKit's regular and exec.cachemount
are accepted), id=PREFIX, until=DURATION (only entries not used for DURATION, e.g. 24h, 7d).`;

/** Read one answer line from stdin; undefined when stdin is closed without one. */
function readAnswer(): Promise<string | undefined> {
  return new Promise((resolve) => {
    const stdin = process.stdin;
    let buf = '';
    const done = (v: string | undefined): void => {
      stdin.off('data', onData);
      stdin.off('end', onEnd);
      stdin.off('error', onEnd);
      stdin.pause();
      resolve(v);
    };
    const onData = (c: Buffer): void => {
      buf += c.toString('utf8');
      const nl = buf.indexOf('\n');
      if (nl >= 0) done(buf.slice(0, nl));
    };
    const onEnd = (): void => done(buf.length ? buf : undefined);
    stdin.on('data', onData);
    stdin.once('end', onEnd);
    stdin.once('error', onEnd);
    stdin.resume();
  });
}

function summarize(actions: PruneAction[]): string {
  const n = (k: PruneAction['kind']): number => actions.filter((a) => a.kind === k).length;
  const parts = [
    [n('record'), 'cache record'],
    [n('layer'), 'layer'],
    [n('snapshot'), 'unpacked snapshot'],
    [n('blob'), 'unreferenced blob'],
    [n('cache-mount'), 'cache mount'],
  ].filter(([c]) => (c as number) > 0).map(([c, w]) => `${c} ${w}${c === 1 ? '' : 's'}`);
  return parts.length ? parts.join(', ') : 'nothing';
}

const actionId = (a: PruneAction): string => {
  switch (a.kind) {
    case 'record':
      return `${a.key.replace(/^sha256:/, '').slice(0, 12)}  cache  ${a.name}`;
    case 'layer':
      return `${a.diffId.slice(7, 19)}  layer`;
    case 'snapshot':
      return `${String(a.id).padEnd(12)}  snapshot${a.layer ? ` (unpacked ${a.layer.slice(7, 19)})` : ''}`;
    case 'blob':
      return `${a.digest.slice(7, 19)}  blob`;
    case 'cache-mount':
      return `${a.id}  cache mount`;
  }
};

/** `kiln prune` */
export function registerPrune(program: Command, cli: CliContext): void {
  program
    .command('prune')
    .description('Remove build cache (never what tagged images or running builds need)')
    .option('-a, --all', 'also cache mounts, unpacked image layers and records shared with tagged images')
    .option('--filter <key=value>', 'type=TYPE, id=PREFIX or until=DURATION (repeatable; see below)', collect, [])
    .option('--keep-storage <size>', 'older name of --max-used-space: the cache keeps at most SIZE (not "keep SIZE free")')
    .option('--max-used-space <size>', 'delete least-recently-used cache until kiln uses at most SIZE')
    .option('--min-free-space <size|pct>', 'delete least-recently-used cache until the disk has SIZE (or PCT%) free')
    .option('--reserved-space <size>', 'never delete the cache below SIZE')
    .option('-f, --force', 'do not ask for confirmation')
    .option('--dry-run', 'show what would be removed, remove nothing')
    .addHelpText('after', SPACE_HELP)
    .action(async (o: { all?: boolean; filter: string[]; keepStorage?: string; maxUsedSpace?: string; minFreeSpace?: string; reservedSpace?: string; force?: boolean; dryRun?: boolean }) => {
      const filters = parseFilters(o.filter);
      if (o.keepStorage && o.maxUsedSpace) throw new BuildError('ERR_KILN_ARGUMENT', '--keep-storage and --max-used-space are the same option; give one');
      const s = await cli.getState();
      const limits: SpaceLimits = {};
      const maxUsed = o.maxUsedSpace ?? o.keepStorage;
      if (maxUsed) limits.maxUsedSpace = parseSize(maxUsed, o.maxUsedSpace ? '--max-used-space' : '--keep-storage');
      if (o.minFreeSpace) limits.minFreeSpace = resolveSpace(parseSpace(o.minFreeSpace, '--min-free-space'), (await diskStats(s.root)).total);
      if (o.reservedSpace) limits.reservedSpace = parseSize(o.reservedSpace, '--reserved-space');
      const opts: PlanOptions = { all: !!o.all, filters, ...(Object.keys(limits).length ? { limits } : {}) };
      const { plan } = await previewPrune(s, opts);
      if (plan.actions.length === 0) {
        process.stdout.write(`Nothing to remove.${plan.limitsUnmet ? ` kiln uses ${formatBytes(plan.usedBefore)}; the rest is needed by tagged images or running builds.` : ''}\nTotal reclaimed space: 0B\n`);
        return;
      }
      if (o.dryRun) {
        for (const a of plan.actions) process.stdout.write(`${actionId(a)}\n`);
        process.stdout.write(`Would remove ${summarize(plan.actions)}: ${formatBytes(plan.bytes)}\n`);
        return;
      }
      if (!o.force) {
        process.stderr.write(`WARNING! This will remove ${summarize(plan.actions)} (${formatBytes(plan.bytes)}).\nAre you sure you want to continue? [y/N] `);
        const answer = await readAnswer();
        if (answer === undefined) {
          process.stderr.write('\n');
          throw new BuildError('ERR_KILN_ARGUMENT', 'prune needs a confirmation, but stdin is closed', { hint: 'answer y on a terminal, or pass -f/--force' });
        }
        if (!/^\s*y(es)?\s*$/i.test(answer)) {
          process.stderr.write('Nothing removed.\n');
          return;
        }
      }
      const r = await prune(s, opts);
      if (r.removed.length) process.stdout.write('Deleted build cache objects:\n');
      for (const x of r.removed) process.stdout.write(`${x.kind === 'record' ? x.id.replace(/^sha256:/, '').slice(0, 12) : x.id.replace(/^sha256:/, '').slice(0, 12)}  ${x.kind}  ${x.description}\n`);
      if (r.skipped) process.stdout.write(`Kept ${r.skipped} item${r.skipped === 1 ? '' : 's'} a running build started using.\n`);
      process.stdout.write(`Total reclaimed space: ${formatBytes(r.bytes)}\n`);
      if (r.plan.limitsUnmet) process.stdout.write(`kiln still uses ${formatBytes(r.plan.usedAfter)}: the rest is needed by tagged images or running builds${o.all ? '' : ' (--all removes more)'}.\n`);
    });
}
