import { Option, type Command } from 'commander';
import path from 'node:path';
import { BuildError } from '../../errors/index.js';
import { runBuild, writeMetadataFile, normalizeRef, type BuildRequest } from '../../engine/index.js';
import { formatVerifyReport, verifyBuild } from '../../verify/index.js';
import { createProgress, type ProgressMode } from '../../progress/index.js';
import { collect, type CliContext } from '../shared.js';
import { parseAssignments, parseKeyValues } from '../../flags/index.js';
import { parseDuration } from '../../gc/index.js';
import type { ApplyLangCacheOptions } from '../../langcache/index.js';
import { addBuildRegistryFlags, registryBuildRequest, registryOutputs } from './registry.js';
import { resolveBuildInput } from './template.js';
import { localHandoff, remoteCliBuild } from './remote.js';

/** `kiln build` */
export function registerBuild(program: Command, cli: CliContext): void {
  addBuildRegistryFlags(program.command('build'))
    .description('Build an image from a Dockerfile, a template file (.ts/.js) or an app folder without a Dockerfile (see kiln plan)')
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
    .option('--network <mode>', 'network for RUN steps: default|host|none|isolated (default = host, as Docker for local builds)', 'default')
    .option('--allow-host-network', 'with --network=isolated: allow RUN --network=host')
    .option('-m, --memory <bytes>', 'memory limit of each RUN step (like docker: 512m, 2g = MiB, GiB)')
    .option('--pids-limit <n>', 'most processes/threads of each RUN step')
    .option('-c, --cpu-shares <n>', 'CPU weight of each RUN step (1024 = default)')
    .option('--step-timeout <duration>', 'stop a RUN step that runs longer (90s, 10m, 1h)')
    .option('--build-timeout <duration>', 'stop the build when it runs longer (30m, 2h)')
    .option('--disk-limit <bytes>', 'bytes the build\'s steps may write in all (500m, 5g = MiB, GiB), checked while each RUN runs')
    .option('--platform <platform>', 'target platform (only the host platform is supported)')
    .option('--lang-cache', 'language caches (/cache/pip, npm, cargo, ...) as cache mounts on every RUN, their env vars in RUN and the image')
    .option('--lang-cache-tools <tools>', 'with --lang-cache: only these tools (comma list, e.g. pip,npm,go)')
    .option('--lang-cache-warm', 'with --lang-cache: also copy the caches into the image (/cache) at the end')
    .option('--lang-cache-owner <uid:gid>', 'owner of the language cache directories', '1000:1000')
    .option('-q, --quiet', 'print only the image digest')
    .option('--verify', 'after the build, rebuild every cache hit from scratch in a scratch root and compare it file by file; a stale hit fails the build')
    .option('--explain', 'say why each step that missed the cache missed (the first input that changed since the last build of this target)')
    .option('--build-env <key=value>', 'template/planned builds: a variable for RUN steps only, never stored (repeatable)', collect, [])
    .option('--ca-bundle <file>', 'template/planned builds: a CA bundle RUN steps trust (mounted, never stored)')
    .option('--base <image>', 'planned builds: base image instead of the language default')
    .option('--no-daemon', 'build in this process even when a kiln serve listens on ROOT/kiln.sock')
    .action(async (context: string, o: Record<string, unknown>) => {
      // --host URL / KILN_HOST: on the build service; else a local kiln serve (ROOT/kiln.sock) takes it when it runs
      const host = cli.host ?? process.env.KILN_HOST;
      if (host) return remoteCliBuild(context, o, host, cli.root);
      if (o.daemon !== false && (await localHandoff(context, o, cli.root))) return;
      const s = await cli.getState();
      const buildArgs = parseAssignments(o.buildArg as string[]);
      const regOut = registryOutputs(o.output as string[]);
      const outputs = regOut.rest.map((spec) => {
        const kv = parseKeyValues(spec, '--output');
        const type = kv.type ?? 'oci';
        if (!['oci', 'docker'].includes(type)) throw new BuildError('ERR_KILN_ARGUMENT', `--output: unsupported type "${type}" (use oci or docker)`);
        if (!kv.dest) throw new BuildError('ERR_KILN_ARGUMENT', '--output needs dest=FILE');
        return { type: type as 'oci' | 'docker', dest: path.resolve(kv.dest) };
      });
      const secrets = (o.secret as string[]).map((spec) => {
        const kv = parseKeyValues(spec, '--secret');
        if (!kv.id) throw new BuildError('ERR_KILN_ARGUMENT', '--secret needs id=');
        return { id: kv.id, ...(kv.src ?? kv.source ? { file: path.resolve((kv.src ?? kv.source)!) } : {}), ...(kv.env ? { env: kv.env } : {}) };
      });
      const sde = buildArgs.SOURCE_DATE_EPOCH ?? process.env.SOURCE_DATE_EPOCH;
      const progress = createProgress(o.quiet ? 'quiet' : (o.progress as ProgressMode));
      const ac = new AbortController();
      let forced: NodeJS.Timeout | undefined;
      // SIGTERM/SIGINT: abort the build through the solver (the executor kills its container); a second signal, or a
      // build still running 10 s later, exits at once — the store stays consistent as after a kill (cleaned up and
      // marked interrupted at the next start)
      const onSig = (sig: NodeJS.Signals): void => {
        const code = 128 + (sig === 'SIGINT' ? 2 : 15);
        if (ac.signal.aborted) process.exit(code);
        ac.abort(new BuildError('ERR_KILN_INTERRUPTED', `build interrupted by ${sig}`));
        forced = setTimeout(() => {
          process.stderr.write(`error: build interrupted by ${sig} (did not stop within 10 s; exiting)\n`);
          process.exit(code);
        }, 10_000);
        forced.unref();
      };
      process.on('SIGINT', onSig);
      process.on('SIGTERM', onSig);
      const input = await resolveBuildInput({ context, ...(o.file ? { file: o.file as string } : {}), buildEnv: o.buildEnv as string[], ...(o.caBundle ? { caBundle: o.caBundle as string } : {}), ...(o.base ? { base: o.base as string } : {}) });
      try {
        const { secrets: inputSecrets, cleanup: _cleanup, ...inputRequest } = input;
        const request: BuildRequest = {
          state: s,
          ...inputRequest,
          tags: o.tag as string[],
          buildArgs,
          ...(networkOf(o.network as string) ? { network: networkOf(o.network as string)! } : {}),
          ...limitsRequest(o),
          ...(o.allowHostNetwork ? { allowHostNetwork: true } : {}),
          ...(o.target ? { target: o.target as string } : {}),
          noCache: o.cache === false,
          // commander files a `--no-` option under the name without `no` (cacheFilter)
          noCacheFilter: (o.cacheFilter ?? o.noCacheFilter ?? []) as string[],
          secrets: [...secrets, ...inputSecrets],
          outputs,
          progress,
          ...langCacheRequest(o),
          ...registryBuildRequest(o, regOut.refs),
          ...(sde !== undefined && /^\d+$/.test(sde) ? { sourceDateEpoch: Number(sde) } : {}),
          signal: ac.signal,
        };
        const r = await runBuild(request);
        if (o.metadataFile) await writeMetadataFile(path.resolve(o.metadataFile as string), r);
        if (o.explain) for (const st of r.steps) if (!st.cached && st.missReason) process.stderr.write(`explain: ${st.name}: ${st.missReason}\n`);
        if (o.verify) {
          const report = await verifyBuild({ state: s, request, result: r, signal: ac.signal });
          for (const line of formatVerifyReport(report)) process.stderr.write(`${line}\n`);
          if (report.stale.length > 0) {
            const first = report.stale[0]!;
            throw new BuildError('ERR_KILN_VERIFY_STALE', `stale cache hit: ${first.step}: ${first.path}: ${first.field}`, { details: { stale: report.stale.length } });
          }
        }
        if (o.quiet) process.stdout.write(`${r.imageDigest}\n`);
        else process.stderr.write(`image ${r.imageDigest}${(o.tag as string[]).length ? ` tagged ${(o.tag as string[]).map(normalizeRef).join(', ')}` : ''}\n`);
      } finally {
        if (forced) clearTimeout(forced);
        process.off('SIGINT', onSig);
        process.off('SIGTERM', onSig);
        await input.cleanup();
      }
    });

}

/** `--lang-cache`, `--lang-cache-tools`, `--lang-cache-warm`, `--lang-cache-owner` → the build request's `langCache`. */
function langCacheRequest(o: Record<string, unknown>): { langCache?: ApplyLangCacheOptions } {
  if (!o.langCache && !o.langCacheWarm && !o.langCacheTools) return {};
  const owner = /^(\d+):(\d+)$/.exec(String(o.langCacheOwner ?? '1000:1000'));
  if (!owner) throw new BuildError('ERR_KILN_ARGUMENT', '--lang-cache-owner must be UID:GID (numbers)');
  const tools = typeof o.langCacheTools === 'string' ? o.langCacheTools.split(',').map((t) => t.trim()).filter(Boolean) : [];
  return {
    langCache: {
      ...(tools.length ? { tools } : {}),
      uid: Number(owner[1]),
      gid: Number(owner[2]),
      ...(o.langCacheWarm ? { warm: true } : {}),
    },
  };
}

/** `-m`, `--pids-limit`, `-c`, `--step-timeout`, `--build-timeout`, `--disk-limit` as the request's `limits`. */
function limitsRequest(o: Record<string, unknown>): Pick<BuildRequest, 'limits'> {
  const limits: NonNullable<BuildRequest['limits']> = {};
  if (o.memory !== undefined) limits.memoryBytes = dockerBytes(o.memory as string, '-m/--memory');
  if (o.pidsLimit !== undefined) limits.pids = positiveInt(o.pidsLimit as string, '--pids-limit');
  if (o.cpuShares !== undefined) limits.cpuShares = positiveInt(o.cpuShares as string, '-c/--cpu-shares');
  if (o.stepTimeout !== undefined) limits.stepTimeoutMs = parseDuration(o.stepTimeout as string, '--step-timeout');
  if (o.buildTimeout !== undefined) limits.buildTimeoutMs = parseDuration(o.buildTimeout as string, '--build-timeout');
  if (o.diskLimit !== undefined) limits.diskBytes = dockerBytes(o.diskLimit as string, '--disk-limit');
  return Object.keys(limits).length > 0 ? { limits } : {};
}

/** Docker's RAMInBytes: b, k, m, g, t (with or without a trailing b) are powers of 1024. */
function dockerBytes(text: string, what: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(i?b)?\s*$/i.exec(text);
  if (!m || Number(m[1]) <= 0) throw new BuildError('ERR_KILN_ARGUMENT', `${what}: cannot read "${text}" as a size`, { hint: 'write it like 512m or 2g (MiB, GiB)' });
  const pow = ['', 'k', 'm', 'g', 't'].indexOf(m[2]!.toLowerCase());
  return Math.floor(Number(m[1]) * 1024 ** pow);
}

function positiveInt(text: string, what: string): number {
  if (!/^\d+$/.test(text.trim()) || Number(text) <= 0) throw new BuildError('ERR_KILN_ARGUMENT', `${what}: "${text}" is not a positive whole number`);
  return Number(text);
}

/** `--network default|host|none|isolated` of kiln build; default and host share the host's network. */
function networkOf(mode: string): 'host' | 'none' | 'isolated' | undefined {
  if (mode === 'default' || mode === 'host') return undefined;
  if (mode === 'none' || mode === 'isolated') return mode;
  throw new BuildError('ERR_KILN_ARGUMENT', `--network: unsupported mode "${mode}" (use default, host, none or isolated)`);
}
