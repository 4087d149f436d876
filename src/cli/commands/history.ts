import { Option, type Command } from 'commander';
import { BuildError } from '../../errors/index.js';
import { diffBuilds, readBuildLog } from '../../explain/index.js';
import { formatAgo } from '../../gc/index.js';
import type { BuildRecord } from '../../metadata/index.js';
import type { State } from '../../engine/index.js';
import type { CliContext } from '../shared.js';

interface StepRow {
  name?: string;
  cached?: boolean;
  durationMs?: number;
  missReason?: string;
  key?: string;
}

function find(s: State, id: string): BuildRecord {
  const b = s.db.builds.getBuild(id);
  if (!b) throw new BuildError('ERR_KILN_ARGUMENT', `no build "${id}" in the history`, { hint: 'kiln history ls lists the builds kept' });
  return b;
}

const secs = (ms: number | null | undefined): string => (ms === null || ms === undefined ? '-' : `${(ms / 1000).toFixed(1)}s`);

function targetName(b: BuildRecord): string {
  return `${b.context}${b.target ? ` (${b.target})` : ''}`;
}

/** `kiln history ls|inspect|logs|diff` */
export function registerHistory(program: Command, cli: CliContext): void {
  const history = program.command('history').description('Build history: list, inspect, logs, and compare builds');

  history
    .command('ls')
    .description('List recorded builds, newest first')
    .addOption(new Option('--format <format>', 'output format').choices(['table', 'json']).default('table'))
    .action(async (o: { format: string }) => {
      const s = await cli.getState();
      const builds = s.db.builds.listBuilds();
      if (o.format === 'json') {
        process.stdout.write(`${JSON.stringify(builds.map(({ steps, ...b }) => ({ ...b, steps: steps.length, cached: (steps as StepRow[]).filter((x) => x.cached).length })), null, 2)}\n`);
        return;
      }
      process.stdout.write(`${'BUILD ID'.padEnd(17)} ${'STATUS'.padEnd(11)} ${'STARTED'.padEnd(16)} ${'DURATION'.padStart(8)} ${'STEPS'.padStart(9)}  TARGET\n`);
      for (const b of builds) {
        const steps = b.steps as StepRow[];
        const cached = steps.filter((x) => x.cached).length;
        const dur = b.finished ? b.finished - b.started : null;
        process.stdout.write(`${b.id.padEnd(17)} ${b.status.padEnd(11)} ${formatAgo(b.started).padEnd(16)} ${secs(dur).padStart(8)} ${`${cached}/${steps.length}`.padStart(9)}  ${targetName(b)}\n`);
      }
    });

  history
    .command('inspect')
    .description('Show one build: steps (cached or not, why not), timings, image digest, build args (secrets redacted)')
    .argument('<id>', 'build id (a unique prefix is enough)')
    .addOption(new Option('--format <format>', 'output format').choices(['text', 'json']).default('text'))
    .action(async (id: string, o: { format: string }) => {
      const s = await cli.getState();
      const b = find(s, id);
      if (o.format === 'json') {
        process.stdout.write(`${JSON.stringify(b, null, 2)}\n`);
        return;
      }
      const lines: string[] = [
        `ID:          ${b.id}`,
        `Status:      ${b.status}${b.error ? ` (${b.error})` : ''}`,
        `Started:     ${new Date(b.started).toISOString()}`,
        `Duration:    ${secs(b.finished ? b.finished - b.started : null)}`,
        `Context:     ${b.context}`,
        `Dockerfile:  ${b.dockerfile}`,
        ...(b.target ? [`Target:      ${b.target}`] : []),
        `Image:       ${b.imageDigest ?? '-'}`,
        ...(b.tags.length ? [`Tags:        ${b.tags.join(', ')}`] : []),
        ...(Object.keys(b.args).length ? ['Build args:', ...Object.entries(b.args).map(([k, v]) => `  ${k}=${v}`)] : []),
        'Steps:',
      ];
      for (const st of b.steps as StepRow[]) {
        lines.push(`  ${st.cached ? 'CACHED'.padEnd(8) : secs(st.durationMs).padEnd(8)} ${st.name ?? ''}`);
        if (!st.cached && st.missReason) lines.push(`           miss: ${st.missReason}`);
      }
      process.stdout.write(`${lines.join('\n')}\n`);
    });

  history
    .command('logs')
    .description("Print a build's captured step output")
    .argument('<id>', 'build id (a unique prefix is enough)')
    .action(async (id: string) => {
      const s = await cli.getState();
      const b = find(s, id);
      const log = await readBuildLog(s.root, b.id);
      if (log === undefined) throw new BuildError('ERR_KILN_ARGUMENT', `no log kept for build ${b.id}`);
      process.stdout.write(log);
    });

  history
    .command('diff')
    .description('Compare two builds step by step: which input changed from A to B')
    .argument('<a>', 'older build id')
    .argument('<b>', 'newer build id')
    .action(async (ida: string, idb: string) => {
      const s = await cli.getState();
      const a = find(s, ida);
      const b = find(s, idb);
      const source = { listBuilds: () => s.db.builds.listBuilds(), inputsOf: (k: string) => s.db.cacheRecords.getCache(k)?.inputs };
      const rows = diffBuilds(a, b, source);
      process.stdout.write(`--- ${a.id}\n+++ ${b.id}\n`);
      for (const r of rows) process.stdout.write(r.same ? `  = ${r.name}\n` : `  ~ ${r.name}: ${r.reason}\n`);
      const changed = rows.filter((r) => !r.same).length;
      process.stdout.write(`${changed} of ${rows.length} steps differ\n`);
    });
}
