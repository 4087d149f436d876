import { Option, type Command } from 'commander';
import path from 'node:path';
import { BuildError } from '../../errors/index.js';
import { runBuild, writeMetadataFile, normalizeRef } from '../../engine/index.js';
import { createProgress, type ProgressMode } from '../../progress/index.js';
import { collect, parseKv, type CliContext } from '../shared.js';

/** `kiln build` */
export function registerBuild(program: Command, cli: CliContext): void {
  program
    .command('build')
    .description('Build an image from a Dockerfile')
    .argument('[context]', 'build context directory', '.')
    .option('-f, --file <file>', 'Dockerfile path (default: CONTEXT/Dockerfile)')
    .option('-t, --tag <name:tag>', 'name and tag the image (repeatable)', collect, [])
    .option('--build-arg <key=value>', 'set a build-time variable (repeatable)', collect, [])
    .option('--no-cache', 'do not use the cache for any step')
    .option('--no-cache-filter <stage>', 'do not use the cache for this stage (repeatable)', collect, [])
    .option('--target <stage>', 'build this stage and what it needs')
    .addOption(new Option('--progress <mode>', 'progress output').choices(['auto', 'tty', 'plain', 'json', 'quiet']).default('auto'))
    .option('--metadata-file <file>', 'write the build result (digests, steps) as JSON')
    .option('-o, --output <spec>', 'type=oci|docker,dest=FILE (repeatable)', collect, [])
    .option('--secret <spec>', 'id=ID,src=FILE or id=ID,env=VAR (repeatable)', collect, [])
    .option('--network <mode>', 'network for RUN steps: default|host|none', 'default')
    .option('--platform <platform>', 'target platform (only the host platform is supported)')
    .option('-q, --quiet', 'print only the image digest')
    .action(async (context: string, o: Record<string, unknown>) => {
      const s = await cli.getState();
      const buildArgs: Record<string, string> = {};
      for (const a of o.buildArg as string[]) {
        const eq = a.indexOf('=');
        if (eq < 0) {
          if (process.env[a] !== undefined) buildArgs[a] = process.env[a]!;
        } else buildArgs[a.slice(0, eq)] = a.slice(eq + 1);
      }
      const outputs = (o.output as string[]).map((spec) => {
        const kv = parseKv(spec, '--output');
        const type = kv.type ?? 'oci';
        if (!['oci', 'docker'].includes(type)) throw new BuildError('ERR_KILN_ARGUMENT', `--output: unsupported type "${type}" (use oci or docker)`);
        if (!kv.dest) throw new BuildError('ERR_KILN_ARGUMENT', '--output needs dest=FILE');
        return { type: type as 'oci' | 'docker', dest: path.resolve(kv.dest) };
      });
      const secrets = (o.secret as string[]).map((spec) => {
        const kv = parseKv(spec, '--secret');
        if (!kv.id) throw new BuildError('ERR_KILN_ARGUMENT', '--secret needs id=');
        return { id: kv.id, ...(kv.src ?? kv.source ? { file: path.resolve((kv.src ?? kv.source)!) } : {}), ...(kv.env ? { env: kv.env } : {}) };
      });
      const sde = buildArgs.SOURCE_DATE_EPOCH ?? process.env.SOURCE_DATE_EPOCH;
      const progress = createProgress(o.quiet ? 'quiet' : (o.progress as ProgressMode));
      const ac = new AbortController();
      const onSig = (): void => ac.abort(new BuildError('ERR_KILN_ARGUMENT', 'build interrupted'));
      process.once('SIGINT', onSig);
      process.once('SIGTERM', onSig);
      try {
        const r = await runBuild({
          state: s,
          contextDir: context,
          ...(o.file ? { dockerfile: o.file as string } : {}),
          tags: o.tag as string[],
          buildArgs,
          ...(o.target ? { target: o.target as string } : {}),
          noCache: o.cache === false,
          noCacheFilter: o.noCacheFilter as string[],
          secrets,
          outputs,
          progress,
          ...(sde !== undefined && /^\d+$/.test(sde) ? { sourceDateEpoch: Number(sde) } : {}),
          signal: ac.signal,
        });
        if (o.metadataFile) await writeMetadataFile(path.resolve(o.metadataFile as string), r);
        if (o.quiet) process.stdout.write(`${r.imageDigest}\n`);
        else process.stderr.write(`image ${r.imageDigest}${(o.tag as string[]).length ? ` tagged ${(o.tag as string[]).map(normalizeRef).join(', ')}` : ''}\n`);
      } finally {
        process.off('SIGINT', onSig);
        process.off('SIGTERM', onSig);
      }
    });

}
