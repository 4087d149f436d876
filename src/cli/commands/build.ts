import { Option, type Command } from 'commander';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { BuildError } from '../../errors/index.js';
import { runBuild, writeMetadataFile, normalizeRef, validateImageName, type BuildOutput, type BuildRequest, type NamedContextSpec } from '../../engine/index.js';
import { formatVerifyReport, verifyBuild } from '../../verify/index.js';
import { createProgress, type ProgressMode } from '../../progress/index.js';
import { collect, type CliContext } from '../shared.js';
import { parseAssignments, parseKeyValues } from '../../flags/index.js';
import { parseDuration } from '../../gc/index.js';
import type { ApplyLangCacheOptions } from '../../langcache/index.js';
import { addBuildRegistryFlags, registryBuildRequest, registryOutputs } from './registry.js';
import { resolveBuildInput, type BuildInput } from './template.js';
import { localHandoff, remoteCliBuild } from './remote.js';

const OUTPUT_KEYS = ['type', 'dest', 'name'];

/** `--output type=oci|docker,dest=FILE[,name=REF]`: an unknown key or type is an error, not ignored. */
function parseOutput(spec: string): BuildOutput {
  const kv = parseKeyValues(spec, '--output');
  for (const k of Object.keys(kv)) {
    if (!OUTPUT_KEYS.includes(k)) throw new BuildError('ERR_KILN_ARGUMENT', `--output ${spec}: unknown key "${k}" (known: ${OUTPUT_KEYS.join(', ')})`);
  }
  const type = kv.type ?? 'oci';
  if (!['oci', 'docker', 'local', 'tar'].includes(type)) throw new BuildError('ERR_KILN_ARGUMENT', `--output: unsupported type "${type}" (use oci, docker, local, tar or registry)`);
  if (!kv.dest) throw new BuildError('ERR_KILN_ARGUMENT', `--output needs dest=${type === 'local' ? 'DIR' : 'FILE'}`);
  if ((type === 'local' || type === 'tar') && kv.name !== undefined) throw new BuildError('ERR_KILN_ARGUMENT', `--output type=${type} writes a filesystem, not an image: name= has no meaning there`);
  const names = kv.name !== undefined ? kv.name.split(/[\s]+/).filter(Boolean) : undefined;
  if (names !== undefined && names.length === 0) throw new BuildError('ERR_KILN_ARGUMENT', `--output ${spec}: name= is empty`);
  for (const n of names ?? []) validateImageName(n, '--output name');
  return { type: type as BuildOutput['type'], dest: path.resolve(kv.dest), ...(names ? { names } : {}) };
}

const OCI_ARCH: Record<string, string> = { x64: 'amd64', ia32: '386', arm: 'arm', arm64: 'arm64', ppc64: 'ppc64le', s390x: 's390x', riscv64: 'riscv64', loong64: 'loong64', mips: 'mips', mipsel: 'mipsle' };
const KNOWN_OS = ['linux', 'windows', 'darwin', 'freebsd'];
const KNOWN_ARCH = ['amd64', '386', 'arm', 'arm64', 'ppc64le', 's390x', 'riscv64', 'loong64', 'mips', 'mipsle', 'mips64', 'mips64le'];
/** what binfmt_misc names the emulator of each architecture (qemu-user-static) */
const QEMU_NAME: Record<string, string> = { amd64: 'x86_64', '386': 'i386', arm: 'arm', arm64: 'aarch64', ppc64le: 'ppc64le', s390x: 's390x', riscv64: 'riscv64' };

/** This machine's platform, as OCI spells it. */
export function hostPlatform(): { os: string; architecture: string } {
  return { os: 'linux', architecture: OCI_ARCH[process.arch] ?? process.arch };
}

/**
 * `--platform os/arch[/variant]` (a comma list as buildx takes it): the host's own platform is built and recorded;
 * a malformed value or a foreign platform is an error saying why (kiln runs RUN steps natively, with no emulator).
 */
export function parsePlatform(value: string): { os: string; architecture: string; variant?: string } {
  const host = hostPlatform();
  const list = value.split(',').map((x) => x.trim()).filter(Boolean);
  if (list.length === 0) throw new BuildError('ERR_KILN_ARGUMENT', '--platform needs a value such as linux/amd64');
  const parsed = list.map((one) => {
    const parts = one.toLowerCase().split('/');
    if (parts.length === 1 && KNOWN_ARCH.includes(parts[0]!)) parts.unshift('linux');
    const [os, arch0, variant] = parts;
    const arch = arch0 === 'x86_64' || arch0 === 'x86-64' ? 'amd64' : arch0 === 'aarch64' ? 'arm64' : arch0;
    if (parts.length < 2 || parts.length > 3 || !os || !arch || !KNOWN_OS.includes(os) || !KNOWN_ARCH.includes(arch)) {
      throw new BuildError('ERR_KILN_ARGUMENT', `--platform: "${one}" is not a platform (expected OS/ARCH[/VARIANT], e.g. ${host.os}/${host.architecture}; OS one of ${KNOWN_OS.join(', ')}; ARCH one of ${KNOWN_ARCH.join(', ')})`);
    }
    return { os, architecture: arch, ...(variant ? { variant } : {}) };
  });
  for (const p of parsed) {
    if (p.os === host.os && p.architecture === host.architecture && (!p.variant || (p.architecture === 'arm64' && p.variant === 'v8'))) continue;
    const name = `${p.os}/${p.architecture}${p.variant ? `/${p.variant}` : ''}`;
    const qemu = QEMU_NAME[p.architecture];
    const emulator = p.os === 'linux' && qemu !== undefined && existsSync(`/proc/sys/fs/binfmt_misc/qemu-${qemu}`);
    throw new BuildError('ERR_KILN_NOT_SUPPORTED', `--platform ${name}: kiln builds only for this machine's platform, ${host.os}/${host.architecture}; ${emulator ? `an emulator (binfmt_misc qemu-${qemu}) is registered, but kiln does not run foreign images through it yet` : `there is no emulator for ${p.architecture} (binfmt_misc qemu-${qemu ?? p.architecture} is not registered)`}`, {
      hint: `build on a ${name} machine, or leave out --platform (or pass --platform ${host.os}/${host.architecture})`,
    });
  }
  return parsed[0]!;
}

/** `--secret id=ID,src=FILE|env=VAR`: a source that does not exist is an error before anything is built. */
function parseSecret(spec: string): { id: string; file?: string; env?: string } {
  const kv = parseKeyValues(spec, '--secret');
  for (const k of Object.keys(kv)) {
    if (!['id', 'src', 'source', 'env', 'type'].includes(k)) throw new BuildError('ERR_KILN_ARGUMENT', `--secret ${spec}: unknown key "${k}" (known: id, src, env, type)`);
  }
  if (!kv.id) throw new BuildError('ERR_KILN_ARGUMENT', '--secret needs id=');
  const src = kv.src ?? kv.source;
  if (src !== undefined && !existsSync(src)) throw new BuildError('ERR_KILN_ARGUMENT', `--secret id=${kv.id}: source file "${src}" does not exist`);
  return { id: kv.id, ...(src !== undefined ? { file: path.resolve(src) } : {}), ...(kv.env ? { env: kv.env } : {}) };
}

/** `kiln build` */
export function registerBuild(program: Command, cli: CliContext): void {
  addBuildRegistryFlags(program.command('build'))
    .description('Build an image from a Dockerfile, a template file (.ts/.js) or an app folder without a Dockerfile (see kiln plan)')
    .argument('[context]', 'build context directory, or - (a Dockerfile or a context tar on standard input)', '.')
    .option('-f, --file <file>', 'Dockerfile path (default: CONTEXT/Dockerfile); - reads it from standard input')
    .option('-t, --tag <name:tag>', 'name and tag the image (repeatable)', collect, [])
    .option('--add-host <host:ip>', 'add a line to /etc/hosts of RUN steps (repeatable)', collect, [])
    .option('--ulimit <name=soft[:hard]>', 'rlimit for RUN steps, e.g. nofile=1024:2048 (repeatable)', collect, [])
    .option('--shm-size <size>', 'size of /dev/shm for RUN steps, e.g. 128m (default 64m)')
    .option('--label <key=value>', 'set a label on the image (repeatable)', collect, [])
    .option('--iidfile <file>', 'write the image ID (config digest, as docker) to the file')
    .option('--build-arg <key=value>', 'set a build-time variable (repeatable)', collect, [])
    .option('--build-context <name=value>', 'additional build context: NAME=DIR or NAME=docker-image://REF, used by FROM NAME, COPY --from=NAME, RUN --mount from=NAME (repeatable)', collect, [])
    .option('--pull', 'always look base images up in their registry (re-resolve tags), even when they are in the local store')
    .option('--no-cache', 'do not use the cache for any step')
    .option('--no-cache-filter <stage>', 'do not use the cache for this stage (repeatable)', collect, [])
    .option('--target <stage>', 'build this stage and what it needs')
    .addOption(new Option('--progress <mode>', 'progress output').choices(['auto', 'tty', 'plain', 'json', 'quiet']).default('auto'))
    .option('--metadata-file <file>', 'write the build result (digests, steps) as JSON')
    .option('-o, --output <spec>', 'type=oci|docker,dest=FILE[,name=REF] | type=local,dest=DIR | type=tar,dest=FILE (repeatable)', collect, [])
    .option('--secret <spec>', 'id=ID,src=FILE or id=ID,env=VAR (repeatable)', collect, [])
    .option('--network <mode>', 'network for RUN steps: default|host|none|isolated (default = host, as Docker for local builds)', 'default')
    .option('--allow-host-network', 'with --network=isolated: allow RUN --network=host')
    .option('-m, --memory <bytes>', 'memory limit of each RUN step (like docker: 512m, 2g = MiB, GiB)')
    .option('--pids-limit <n>', 'most processes/threads of each RUN step')
    .option('-c, --cpu-shares <n>', 'CPU weight of each RUN step (1024 = default)')
    .option('--step-timeout <duration>', 'stop a RUN step that runs longer (90s, 10m, 1h)')
    .option('--build-timeout <duration>', 'stop the build when it runs longer (30m, 2h)')
    .option('--disk-limit <bytes>', 'bytes the build\'s steps may write in all (500m, 5g = MiB, GiB), checked while each RUN runs')
    .option('--platform <platform>', 'target platform OS/ARCH[/VARIANT]: this machine\'s own (a foreign one is refused: no emulator)')
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
    .option('--ready-timeout <seconds>', 'template builds: how long the start command has to pass its ready check (default 60)')
    .action(async (context: string, o: Record<string, unknown>) => {
      // --host URL / KILN_HOST: on the build service; else a local kiln serve (ROOT/kiln.sock) takes it when it runs
      const host = cli.host ?? process.env.KILN_HOST;
      if (host) return remoteCliBuild(context, o, host, cli.root);
      if (o.daemon !== false && (await localHandoff(context, o, cli.root))) return;
      const buildArgs: Record<string, string> = {};
      for (const a of o.buildArg as string[]) {
        const eq = a.indexOf('=');
        const name = eq < 0 ? a : a.slice(0, eq);
        if (!/^[A-Za-z_][A-Za-z0-9_.-]*$/.test(name)) {
          throw new BuildError('ERR_KILN_ARGUMENT', `--build-arg "${a}": ${name === '' ? 'the name before = is empty' : `"${name}" is not a build-arg name`} (expected NAME=VALUE or NAME)`);
        }
        if (eq < 0) {
          if (process.env[a] !== undefined) buildArgs[a] = process.env[a]!;
        } else buildArgs[a.slice(0, eq)] = a.slice(eq + 1);
      }
      const platform = typeof o.platform === 'string' ? parsePlatform(o.platform) : undefined;
      const regOut = registryOutputs(o.output as string[]);
      const outputs = regOut.rest.map(parseOutput);
      const secrets = (o.secret as string[]).map(parseSecret);
      const s = await cli.getState();
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
      const fromStdin = await stdinBuildInput(context, o.file as string | undefined);
      const input = fromStdin ?? await resolveBuildInput({ context, ...(o.file ? { file: o.file as string } : {}), buildEnv: o.buildEnv as string[], ...(o.caBundle ? { caBundle: o.caBundle as string } : {}), ...(o.base ? { base: o.base as string } : {}), ...readyTimeout(o.readyTimeout) });
      try {
        const { secrets: inputSecrets, cleanup: _cleanup, ...inputRequest } = input;
        const labels = parseLabels(o.label as string[]);
        const request: BuildRequest = {
          state: s,
          ...(Object.keys(labels).length ? { labels } : {}),
          ...((o.addHost as string[]).length ? { extraHosts: (o.addHost as string[]).map(parseAddHost) } : {}),
          ...((o.ulimit as string[]).length ? { ulimits: (o.ulimit as string[]).map(parseUlimit) } : {}),
          ...(o.shmSize !== undefined ? { shmSizeBytes: parseShmSize(o.shmSize as string) } : {}),
          ...(platform ? { platform } : {}),
          ...(o.pull ? { pull: true } : {}),
          ...((o.buildContext as string[]).length ? { namedContexts: parseBuildContexts(o.buildContext as string[]) } : {}),
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
        if (o.iidfile) writeFileSync(path.resolve(o.iidfile as string), r.configDigest);
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

/** Read all of standard input. */
async function readAllStdin(): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

function untar(archive: Buffer, dir: string, compression: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    // tar detects compression only in files, not in a pipe: the flag from the magic bytes
    const p = spawn('tar', ['-x', ...compression, '-f', '-', '-C', dir, '--no-same-owner'], { stdio: ['pipe', 'ignore', 'pipe'] });
    let err = '';
    p.stderr.on('data', (c: Buffer) => (err += c.toString()));
    p.on('error', reject);
    p.on('close', (code) => (code === 0 ? resolve() : reject(new BuildError('ERR_KILN_ARGUMENT', `the context on standard input is not a readable tar: ${err.trim().split('\n').pop() ?? `exit ${code}`}`))));
    p.stdin.end(archive);
  });
}

/**
 * docker's stdin forms: `kiln build -` (a Dockerfile, no context; or a tar, plain or compressed, that is the
 * context) and `kiln build -f - DIR` (the Dockerfile on stdin, DIR the context). Undefined when neither is used.
 */
async function stdinBuildInput(context: string, file: string | undefined): Promise<BuildInput | undefined> {
  if (context !== '-' && file !== '-') return undefined;
  if (context === '-' && file === '-') throw new BuildError('ERR_KILN_ARGUMENT', 'the context and -f cannot both be - (standard input)');
  const data = await readAllStdin();
  if (context !== '-') {
    if (!existsSync(context)) throw new BuildError('ERR_KILN_ARGUMENT', `build context "${context}" does not exist`);
    return { contextDir: context, dockerfileText: data.toString('utf8'), secrets: [], cleanup: async () => undefined };
  }
  const dir = mkdtempSync(path.join(tmpdir(), 'kiln-stdin-context-'));
  const cleanup = async (): Promise<void> => rmSync(dir, { recursive: true, force: true });
  const isTar = data.length > 262 && data.subarray(257, 262).toString('latin1') === 'ustar';
  const compression = data[0] === 0x1f && data[1] === 0x8b ? ['-z'] : data.subarray(0, 3).toString('latin1') === 'BZh' ? ['-j'] : data.subarray(0, 6).equals(Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00])) ? ['-J'] : data.subarray(0, 4).equals(Buffer.from([0x28, 0xb5, 0x2f, 0xfd])) ? ['--zstd'] : undefined;
  try {
    if (isTar || compression) {
      await untar(data, dir, compression ?? []);
      if (file !== undefined) return { contextDir: dir, dockerfile: path.join(dir, file), secrets: [], cleanup };
      return { contextDir: dir, secrets: [], cleanup };
    }
    return { contextDir: dir, dockerfileText: data.toString('utf8'), secrets: [], cleanup };
  } catch (err) {
    await cleanup();
    throw err;
  }
}

/**
 * `--build-context NAME=VALUE` as buildx reads it: `docker-image://REF` is an image, anything without a scheme a
 * local folder (relative to the current directory); git, HTTP, `oci-layout://` and bake's `target:` are refused.
 */
export function parseBuildContexts(list: string[]): Record<string, NamedContextSpec> {
  const out: Record<string, NamedContextSpec> = {};
  for (const spec of list) {
    const eq = spec.indexOf('=');
    const name = eq < 0 ? '' : spec.slice(0, eq).trim();
    const value = eq < 0 ? '' : spec.slice(eq + 1);
    if (name === '' || value === '') throw new BuildError('ERR_KILN_ARGUMENT', `--build-context "${spec}": expected NAME=VALUE (a folder, or docker-image://REF)`);
    if (out[name]) throw new BuildError('ERR_KILN_ARGUMENT', `--build-context: "${name}" is given twice`);
    if (value.startsWith('docker-image://')) {
      const ref = value.slice('docker-image://'.length);
      validateImageName(ref, `--build-context ${name}`);
      out[name] = { type: 'image', ref };
      continue;
    }
    const scheme = /^([a-z][a-z0-9+.-]*):\/\//i.exec(value) ?? (/^target:/.exec(value) ? ['target:', 'target'] : null) ?? (/^git@/.exec(value) ? ['git@', 'git'] : null);
    if (scheme) {
      throw new BuildError('ERR_KILN_NOT_SUPPORTED', `--build-context ${name}=${value}: ${scheme[1]} contexts are not supported (kiln takes a local folder or docker-image://REF)`, {
        hint: scheme[1] === 'oci-layout' ? `kiln load the layout, then use docker-image://NAME` : 'check the source out or download it into a folder and pass that folder',
      });
    }
    if (!existsSync(value) || !statSync(value).isDirectory()) throw new BuildError('ERR_KILN_ARGUMENT', `--build-context ${name}=${value}: no such folder`);
    out[name] = { type: 'local', dir: path.resolve(value) };
  }
  return out;
}

/** `--add-host HOST:IP` (or HOST=IP, as buildx); IPv6 addresses keep their colons */
function parseAddHost(spec: string): { host: string; ip: string } {
  const sep = spec.includes('=') ? spec.indexOf('=') : spec.indexOf(':');
  const host = sep < 0 ? '' : spec.slice(0, sep);
  const ip = sep < 0 ? '' : spec.slice(sep + 1).replace(/^\[(.*)\]$/, '$1');
  if (!/^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?$/.test(host) || !(isIP(ip) || ip === 'host-gateway')) {
    throw new BuildError('ERR_KILN_ARGUMENT', `--add-host "${spec}": expected HOST:IP, e.g. registry.local:10.0.0.5`);
  }
  if (ip === 'host-gateway') throw new BuildError('ERR_KILN_NOT_SUPPORTED', '--add-host HOST:host-gateway: RUN steps share the host\'s network; use 127.0.0.1');
  return { host, ip };
}

const ULIMITS = ['core', 'cpu', 'data', 'fsize', 'locks', 'memlock', 'msgqueue', 'nice', 'nofile', 'nproc', 'rss', 'rtprio', 'rttime', 'sigpending', 'stack'];

/** `--ulimit NAME=SOFT[:HARD]` as docker (`-1` is unlimited) */
function parseUlimit(spec: string): { name: string; soft: number; hard: number } {
  const m = /^([a-z]+)=(-?\d+)(?::(-?\d+))?$/.exec(spec);
  if (!m) throw new BuildError('ERR_KILN_ARGUMENT', `--ulimit "${spec}": expected NAME=SOFT[:HARD], e.g. nofile=1024:2048`);
  const name = m[1]!;
  if (!ULIMITS.includes(name)) throw new BuildError('ERR_KILN_ARGUMENT', `--ulimit "${spec}": unknown limit "${name}" (one of ${ULIMITS.join(', ')})`);
  // -1: unlimited (2^63, as large as a JSON number carries exactly enough for runc)
  const num = (v: string): number => (v === '-1' ? 2 ** 63 : Number(v));
  const soft = num(m[2]!);
  const hard = m[3] !== undefined ? num(m[3]) : soft;
  if (soft > hard) throw new BuildError('ERR_KILN_ARGUMENT', `--ulimit "${spec}": the soft limit is above the hard limit`);
  return { name, soft, hard };
}

/** `--shm-size 128m` (b, k, m, g; a bare number is bytes) → bytes */
function parseShmSize(v: string): number {
  const m = /^(\d+(?:\.\d+)?)([bkmg]?)b?$/i.exec(v.trim());
  if (!m) throw new BuildError('ERR_KILN_ARGUMENT', `--shm-size "${v}": expected a size such as 128m or 1g`);
  const mult = { '': 1, b: 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3 }[m[2]!.toLowerCase() as '' | 'b' | 'k' | 'm' | 'g'];
  const n = Math.round(Number(m[1]) * mult);
  if (n <= 0) throw new BuildError('ERR_KILN_ARGUMENT', `--shm-size "${v}" must be more than 0`);
  return n;
}

/** `--label KEY=VALUE` (a bare KEY is an empty label, as docker) */
function parseLabels(list: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const l of list) {
    const eq = l.indexOf('=');
    const k = eq < 0 ? l : l.slice(0, eq);
    if (k.trim() === '') throw new BuildError('ERR_KILN_ARGUMENT', `--label "${l}": the key before = is empty`);
    out[k] = eq < 0 ? '' : l.slice(eq + 1);
  }
  return out;
}

/** `--ready-timeout SECONDS` → milliseconds */
function readyTimeout(v: unknown): { readyTimeoutMs?: number } {
  if (v === undefined) return {};
  const n = Number(v);
  if (!Number.isFinite(n) || n <= 0) throw new BuildError('ERR_KILN_ARGUMENT', `--ready-timeout: "${String(v)}" is not a number of seconds`);
  return { readyTimeoutMs: Math.round(n * 1000) };
}

/** `--network default|host|none|isolated` of kiln build; default and host share the host's network. */
function networkOf(mode: string): 'host' | 'none' | 'isolated' | undefined {
  if (mode === 'default' || mode === 'host') return undefined;
  if (mode === 'none' || mode === 'isolated') return mode;
  throw new BuildError('ERR_KILN_ARGUMENT', `--network: unsupported mode "${mode}" (use default, host, none or isolated)`);
}
