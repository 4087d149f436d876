import type { Command } from 'commander';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { BuildError, ERROR_CODES, type ErrorCode } from '../../errors/index.js';
import { defaultRoot, writeMetadataFile, type BuildResult } from '../../engine/index.js';
import { digestCacheFileFor, KilnClient, parseEndpoint, readAll, request, responseError, runRemoteBuild, type RemoteBuildSpec, type RemoteEvent } from '../../client/index.js';
import { createProgress, type ProgressEvent, type ProgressMode, type ProgressSink } from '../../progress/index.js';
import { planAppDir } from '../../planner/index.js';
import { templateReads, type TemplateData } from '../../sdk/index.js';
import type { CliContext } from '../shared.js';
import { formatBytes } from '../../gc/index.js';
import { isTemplateFile, loadTemplateFile, resolveBuildInput } from './template.js';

/** Feed a `--progress=json` line (from the service or the local socket) to a progress display. */
function replay(sink: ProgressSink, e: RemoteEvent): void {
  if (e.type === 'total') sink.setTotal(Number(e.steps));
  else if (e.type !== 'finish') sink.event(e as unknown as ProgressEvent);
}

function info(sink: ProgressSink, message: string): void {
  sink.event({ type: 'info', message, at: Date.now() });
}

/** `kiln build` flags a remote build or a local hand-off cannot carry (each named in the refusal). */
const LOCAL_ONLY = ['output', 'verify', 'push', 'pull', 'buildContext', 'cacheTo', 'cacheFrom', 'cacheRegistry', 'langCache', 'langCacheWarm', 'langCacheTools', 'registryAuth', 'insecureRegistry'] as const;

function usedLocalOnly(o: Record<string, unknown>): string[] {
  return LOCAL_ONLY.filter((k) => {
    const v = o[k];
    return Array.isArray(v) ? v.length > 0 : v !== undefined && v !== false;
  });
}

function flagName(k: string): string {
  return `--${k.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`;
}

function buildArgsOf(list: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const a of list) {
    const eq = a.indexOf('=');
    if (eq < 0) {
      if (process.env[a] !== undefined) out[a] = process.env[a]!;
    } else out[a.slice(0, eq)] = a.slice(eq + 1);
  }
  return out;
}

/** `kiln --host URL build ...` (or KILN_HOST): upload what the build reads, build on the service, show its progress. */
export async function remoteCliBuild(context: string, o: Record<string, unknown>, host: string, root?: string): Promise<void> {
  const refused = usedLocalOnly(o);
  if ((o.secret as string[]).length) refused.push('secret');
  if ((o.buildEnv as string[]).length || o.caBundle) refused.push('buildEnv');
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
 * the build uses flags only an in-process build has), and the caller builds in-process.
 */
export async function localHandoff(context: string, o: Record<string, unknown>, root: string | undefined): Promise<boolean> {
  const socket = localSocketOf(root);
  if (!existsSync(socket) || usedLocalOnly(o).length > 0) return false;
  const secretSpecs = o.secret as string[];
  const secrets: Array<{ id: string; file: string }> = [];
  for (const spec of secretSpecs) {
    const kv = Object.fromEntries(spec.split(',').map((p) => [p.slice(0, p.indexOf('=')), p.slice(p.indexOf('=') + 1)]));
    if (!kv.id || !(kv.src ?? kv.source)) return false; // env secrets: their values are in this process only
    secrets.push({ id: kv.id, file: path.resolve((kv.src ?? kv.source)!) });
  }
  const ep = parseEndpoint(`unix:${socket}`);
  try {
    const res = await request(ep, { method: 'GET', path: '/health' });
    await readAll(res);
    if (res.status !== 200) return false;
  } catch {
    return false; // a socket left by a killed server
  }
  const input = await resolveBuildInput({ context, ...(o.file ? { file: o.file as string } : {}), buildEnv: o.buildEnv as string[], ...(o.caBundle ? { caBundle: o.caBundle as string } : {}), ...(o.base ? { base: o.base as string } : {}) });
  const progress = createProgress(o.quiet ? 'quiet' : (o.progress as ProgressMode));
  const ac = new AbortController();
  const onSig = (): void => ac.abort();
  process.once('SIGINT', onSig);
  process.once('SIGTERM', onSig);
  let result: BuildResult | undefined;
  let failure: BuildError | undefined;
  try {
    info(progress, `handing the build to kiln serve (${socket}); --no-daemon builds in this process`);
    const body = {
      contextDir: path.resolve(input.contextDir),
      ...(input.dockerfile ? { dockerfile: path.resolve(input.dockerfile) } : {}),
      ...(input.dockerfileText !== undefined ? { dockerfileText: input.dockerfileText } : {}),
      ...(input.steps?.length ? { steps: input.steps } : {}),
      tags: o.tag as string[],
      buildArgs: buildArgsOf(o.buildArg as string[]),
      ...(o.target ? { target: o.target as string } : {}),
      ...(o.cache === false ? { noCache: true } : {}),
      noCacheFilter: (o.cacheFilter ?? o.noCacheFilter ?? []) as string[],
      ...(o.network === 'none' ? { network: 'none' } : {}),
      secrets: [...secrets, ...input.secrets.flatMap((s) => (s.file ? [{ id: s.id, file: s.file }] : []))],
    };
    const res = await request(ep, { method: 'POST', path: '/local/v1/builds', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body), signal: ac.signal });
    if (res.status !== 200) throw await responseError(res);
    let buf = '';
    for await (const chunk of res.body as AsyncIterable<Buffer>) {
      buf += chunk.toString('utf8');
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const e = JSON.parse(buf.slice(0, nl)) as RemoteEvent;
        buf = buf.slice(nl + 1);
        if (e.type === 'result') result = e.result as BuildResult;
        else if (e.type === 'error') failure = new BuildError(typeof e.code === 'string' && e.code in ERROR_CODES ? (e.code as ErrorCode) : 'ERR_KILN_INTERNAL', String(e.message));
        else replay(progress, e);
      }
    }
  } catch (err) {
    if (ac.signal.aborted) failure = new BuildError('ERR_KILN_INTERRUPTED', 'build interrupted (the server cancels it)');
    else throw err;
  } finally {
    process.off('SIGINT', onSig);
    process.off('SIGTERM', onSig);
    await input.cleanup();
  }
  if (!result) {
    progress.finish(false);
    throw failure ?? new BuildError('ERR_KILN_SERVICE_UNAVAILABLE', 'kiln serve stopped before the build finished');
  }
  progress.finish(true);
  if (o.metadataFile) await writeMetadataFile(path.resolve(o.metadataFile as string), result);
  if (o.explain) for (const st of result.steps) if (!st.cached && st.missReason) process.stderr.write(`explain: ${st.name}: ${st.missReason}\n`);
  const tags = o.tag as string[];
  if (o.quiet) process.stdout.write(`${result.imageDigest}\n`);
  else process.stderr.write(`image ${result.imageDigest}${tags.length ? ` tagged ${tags.join(', ')}` : ''}\n`);
  return true;
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
