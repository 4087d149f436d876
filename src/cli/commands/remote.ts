import type { Command } from 'commander';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { BuildError } from '../../errors/index.js';
import { defaultRoot } from '../../engine/index.js';
import { digestCacheFileFor, KilnClient, runRemoteBuild, type RemoteBuildSpec } from '../../client/index.js';
import { createProgress, type ProgressMode } from '../../progress/index.js';
import { programStepText, type ProgramStepText } from '../../frontend/dockerfile/convert/index.js';
import { buildArgsOf, fileSecrets, info, openLocalServer, replay, sendLocalBuild } from '../handoff.js';
import { planAppDir } from '../../planner/index.js';
import { templateReads, type TemplateData } from '../../sdk/index.js';
import type { CliContext } from '../shared.js';
import { formatBytes } from '../../gc/index.js';
import { isTemplateFile, loadTemplateFile, resolveBuildInput } from './template.js';
import { handoffCarriesNetwork } from '../lean.js';

/**
 * How each `kiln build` option (commander's attribute name) is handled away from this process. `remote` is a build
 * on the service (`--host` / KILN_HOST): `carried` to the service, `local` (applied here after the hand-off: output
 * files, display), or `refused` with an error naming it. `handoff` is a local `kiln serve` on ROOT/kiln.sock:
 * `carried`, `local`, or `in-process` (the build is not handed off but built in this process, where every flag
 * works). remote.test.ts fails when a build option is missing here, so no new flag can be dropped silently.
 */
export const BUILD_FLAG_HANDLING: Record<string, { remote: 'carried' | 'local' | 'refused'; handoff: 'carried' | 'local' | 'in-process' }> = {
  tag: { remote: 'carried', handoff: 'carried' },
  buildArg: { remote: 'carried', handoff: 'carried' },
  target: { remote: 'carried', handoff: 'carried' },
  cache: { remote: 'carried', handoff: 'carried' },
  cacheFilter: { remote: 'carried', handoff: 'carried' }, // --no-cache-filter
  network: { remote: 'carried', handoff: 'carried' }, // remote: only default and none (remoteCarriesNetwork); hand-off: all four
  file: { remote: 'carried', handoff: 'carried' },
  base: { remote: 'carried', handoff: 'carried' },
  secret: { remote: 'refused', handoff: 'carried' }, // file secrets: the local server reads the file
  buildEnv: { remote: 'refused', handoff: 'carried' },
  caBundle: { remote: 'refused', handoff: 'carried' },
  progress: { remote: 'local', handoff: 'local' },
  quiet: { remote: 'local', handoff: 'local' },
  metadataFile: { remote: 'local', handoff: 'local' },
  iidfile: { remote: 'local', handoff: 'local' },
  explain: { remote: 'local', handoff: 'local' },
  daemon: { remote: 'local', handoff: 'local' },
  output: { remote: 'refused', handoff: 'in-process' },
  verify: { remote: 'refused', handoff: 'in-process' },
  push: { remote: 'refused', handoff: 'in-process' },
  pull: { remote: 'refused', handoff: 'in-process' },
  buildContext: { remote: 'refused', handoff: 'in-process' },
  cacheTo: { remote: 'refused', handoff: 'in-process' },
  cacheFrom: { remote: 'refused', handoff: 'in-process' },
  cacheRegistry: { remote: 'refused', handoff: 'in-process' },
  langCache: { remote: 'refused', handoff: 'in-process' },
  langCacheWarm: { remote: 'refused', handoff: 'in-process' },
  langCacheTools: { remote: 'refused', handoff: 'in-process' },
  langCacheOwner: { remote: 'refused', handoff: 'in-process' },
  registryAuth: { remote: 'refused', handoff: 'in-process' },
  insecureRegistry: { remote: 'refused', handoff: 'in-process' },
  addHost: { remote: 'refused', handoff: 'in-process' },
  ulimit: { remote: 'refused', handoff: 'in-process' },
  shmSize: { remote: 'refused', handoff: 'in-process' },
  label: { remote: 'refused', handoff: 'in-process' },
  allowHostNetwork: { remote: 'refused', handoff: 'in-process' },
  memory: { remote: 'refused', handoff: 'in-process' },
  pidsLimit: { remote: 'refused', handoff: 'in-process' },
  cpuShares: { remote: 'refused', handoff: 'in-process' },
  stepTimeout: { remote: 'refused', handoff: 'in-process' },
  buildTimeout: { remote: 'refused', handoff: 'in-process' },
  diskLimit: { remote: 'refused', handoff: 'in-process' },
  platform: { remote: 'refused', handoff: 'in-process' },
  readyTimeout: { remote: 'refused', handoff: 'in-process' },
};

/** Options whose value is not "unset" even when the user gave none (commander defaults and negatable flags). */
const DEFAULTS: Record<string, unknown> = { progress: 'auto', network: 'default', langCacheOwner: '1000:1000', cache: true, daemon: true };

/** The options the user set, by attribute name. */
export function usedBuildFlags(o: Record<string, unknown>): string[] {
  return Object.keys(o).filter((k) => {
    const v = o[k];
    if (k in DEFAULTS) return v !== DEFAULTS[k];
    return Array.isArray(v) ? v.length > 0 : v !== undefined && v !== false;
  });
}

function handledAs(k: string, where: 'remote' | 'handoff'): string {
  return BUILD_FLAG_HANDLING[k]?.[where] ?? (where === 'remote' ? 'refused' : 'in-process');
}

/** Set flags a hand-off to a local kiln serve cannot carry (the build then runs in this process). */
function inProcessOnly(o: Record<string, unknown>): string[] {
  const out = usedBuildFlags(o).filter((k) => handledAs(k, 'handoff') === 'in-process');
  if (!handoffCarriesNetwork(o)) out.push('network');
  return out;
}

/** A remote build carries only the default network and none (the service's policy decides host and isolated). */
function remoteCarriesNetwork(o: Record<string, unknown>): boolean {
  return o.network === 'default' || o.network === 'none';
}

function flagName(k: string): string {
  return `--${k.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`;
}

/** `kiln --host URL build ...` (or KILN_HOST): upload what the build reads, build on the service, show its progress. */
export async function remoteCliBuild(context: string, o: Record<string, unknown>, host: string, root?: string): Promise<void> {
  const refused = usedBuildFlags(o).filter((k) => handledAs(k, 'remote') === 'refused');
  if (!remoteCarriesNetwork(o)) refused.push('network');
  if (refused.length) throw new BuildError('ERR_KILN_NOT_SUPPORTED', `--host: ${refused.map(flagName).join(', ')} cannot be used with a remote build`, { hint: 'build without --host / KILN_HOST for these' });
  const tags = o.tag as string[];
  if (tags.length > 1) throw new BuildError('ERR_KILN_NOT_SUPPORTED', '--host: a remote build takes one -t NAME[:TAG] (the template name)');
  const apiKey = process.env.KILN_API_KEY;
  const spec: RemoteBuildSpec = {
    ...(tags[0] ? { name: tags[0] } : {}),
    buildArgs: buildArgsOf(o.buildArg as string[]),
    ...(o.target ? { target: o.target as string } : {}),
    ...(o.cache === false ? { noCache: true } : {}),
    noCacheFilter: (o.cacheFilter ?? o.noCacheFilter ?? []) as string[],
    ...(o.network === 'none' ? { network: 'none' as const } : {}),
  };
  let contextDir = context;
  let include: string[] | undefined;
  let dockerfilePath: string | undefined;
  const asTemplate = (data: TemplateData): void => {
    const { defaultContext: _d, ...t } = data;
    spec.template = t;
    include = templateReads(data);
  };
  if (!o.file && isTemplateFile(context)) {
    const data = await loadTemplateFile(context);
    contextDir = data.defaultContext!;
    asTemplate(data);
  } else if (!o.file && !existsSync(path.join(context, 'Dockerfile')) && existsSync(context)) {
    asTemplate(planAppDir(context, o.base ? { base: o.base as string } : {}).template);
  } else {
    dockerfilePath = path.resolve((o.file as string | undefined) ?? path.join(context, 'Dockerfile'));
    if (!existsSync(dockerfilePath)) throw new BuildError('ERR_KILN_DOCKERFILE_NOT_FOUND', `cannot read Dockerfile "${dockerfilePath}": no such file`);
    spec.dockerfile = readFileSync(dockerfilePath, 'utf8');
  }
  const progress = createProgress(o.quiet ? 'quiet' : (o.progress as ProgressMode));
  const client = new KilnClient({ baseUrl: host, ...(apiKey ? { apiKey } : {}) });
  const ac = new AbortController();
  const onSig = (): void => ac.abort(new BuildError('ERR_KILN_INTERRUPTED', 'interrupted: the remote build is cancelled'));
  process.once('SIGINT', onSig);
  process.once('SIGTERM', onSig);
  let ok = false;
  try {
    const out = await runRemoteBuild({
      client, spec, contextDir, ...(include ? { include } : {}), digestCacheFile: digestCacheFileFor(path.resolve(root ?? defaultRoot()), contextDir), ...(dockerfilePath ? { dockerfilePath } : {}), signal: ac.signal, cancelOnAbort: true,
      onStarted: (b) => info(progress, `building on kiln serve at ${host} (build ${b.id})`),
      onEvent: (e) => replay(progress, e),
    });
    ok = true;
    progress.finish(true);
    const r = out.build.result!;
    process.stderr.write(`uploaded ${out.upload.files} file(s), ${formatBytes(out.upload.bytes)} (${formatBytes(out.upload.skippedBytes)} already on the server)\n`);
    if (o.metadataFile) {
      const meta = { 'containerimage.digest': r.digest, 'containerimage.config.digest': r.configDigest, 'kiln.build': out.build.id, 'kiln.steps': r.steps };
      const { writeFile } = await import('node:fs/promises');
      await writeFile(path.resolve(o.metadataFile as string), `${JSON.stringify(meta, null, 2)}\n`);
    }
    if (o.iidfile) writeFileSync(path.resolve(o.iidfile as string), r.configDigest);
    if (o.explain) for (const st of r.steps) if (!st.cached && st.missReason) process.stderr.write(`explain: ${st.name}: ${st.missReason}\n`);
    if (o.quiet) process.stdout.write(`${r.digest}\n`);
    else process.stderr.write(`image ${r.digest}${r.name ? ` tagged ${r.name}:${r.tag ?? 'latest'}` : ''} on ${host}\n`);
  } finally {
    if (!ok) progress.finish(false);
    process.off('SIGINT', onSig);
    process.off('SIGTERM', onSig);
    client.close();
  }
}

/** The socket plain `kiln build` hands builds to: ROOT/kiln.sock of the root it would build in. */
export function localSocketOf(root: string | undefined): string {
  return path.join(path.resolve(root ?? defaultRoot()), 'kiln.sock');
}

/**
 * Plain `kiln build` with a `kiln serve` on ROOT/kiln.sock: the server builds it in its warm state (no process
 * start-up of the engine, no re-read of the stat cache). Returns false when there is no server to hand it to (or
 * the build uses flags only an in-process build has), and the caller builds in-process. (The lean entry, lean.ts,
 * takes the common case before this module is loaded.)
 */
export async function localHandoff(context: string, o: Record<string, unknown>, root: string | undefined): Promise<boolean> {
  const socket = localSocketOf(root);
  if (!existsSync(socket) || inProcessOnly(o).length > 0) return false;
  const secrets = fileSecrets(o.secret as string[]);
  if (!secrets) return false; // env secrets: their values are in this process only
  // is a server there? (connecting tells; the request goes on a new connection once the input is resolved, which
  // may take a while for a template, longer than the server waits for a request's head)
  const probe = await openLocalServer(socket);
  if (!probe) return false;
  probe.destroy();
  const input = await resolveBuildInput({ context, ...(o.file ? { file: o.file as string } : {}), buildEnv: o.buildEnv as string[], ...(o.caBundle ? { caBundle: o.caBundle as string } : {}), ...(o.base ? { base: o.base as string } : {}) });
  try {
    // a template's steps cross as Dockerfile text, only when it reads back as the same records
    const steps = input.steps?.map(programStepText);
    if (steps?.some((st) => st === undefined)) return false;
    const { steps: _records, ...rest } = input;
    const conn = await openLocalServer(socket);
    if (!conn) return false;
    return await sendLocalBuild(conn, socket, { ...rest, ...(steps ? { steps: steps as ProgramStepText[] } : {}) }, o, secrets);
  } finally {
    await input.cleanup();
  }
}

function clientOf(cli: CliContext): KilnClient {
  const host = cli.host ?? process.env.KILN_HOST;
  if (!host) throw new BuildError('ERR_KILN_ARGUMENT', 'kiln template ls|inspect|rm talk to a build service: pass --host URL or set KILN_HOST (and KILN_API_KEY)');
  const apiKey = process.env.KILN_API_KEY;
  return new KilnClient({ baseUrl: host, ...(apiKey ? { apiKey } : {}) });
}

/** `kiln template ls|inspect|rm` (the service's templates of the key's team) */
export function registerTemplateResources(t: Command, cli: CliContext): void {
  t.command('ls').description('List the templates on the build service (--host/KILN_HOST, KILN_API_KEY)').option('--json', 'print JSON').action(async (o: { json?: boolean }) => {
    const c = clientOf(cli);
    try {
      const list = await c.listTemplates();
      if (o.json) process.stdout.write(`${JSON.stringify(list, null, 2)}\n`);
      else {
        process.stdout.write('NAME\tTAG\tDIGEST\tUPDATED\n');
        for (const x of list) for (const tag of x.tags) process.stdout.write(`${x.name}\t${tag.tag}\t${tag.digest.slice(0, 19)}\t${new Date(tag.updated).toISOString()}\n`);
      }
    } finally {
      c.close();
    }
  });
  t.command('inspect').argument('<name>', 'NAME or NAME:TAG').description('Details of a template on the build service (JSON)').action(async (name: string) => {
    const c = clientOf(cli);
    try {
      process.stdout.write(`${JSON.stringify(await c.getTemplate(name), null, 2)}\n`);
    } finally {
      c.close();
    }
  });
  t.command('rm').argument('<name>', 'NAME (every tag) or NAME:TAG').description('Delete a template on the build service').action(async (name: string) => {
    const c = clientOf(cli);
    try {
      const r = await c.deleteTemplate(name);
      process.stderr.write(`deleted ${r.deleted} tag(s) of ${name}\n`);
    } finally {
      c.close();
    }
  });
}
