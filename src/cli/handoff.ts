import path from 'node:path';
import { BuildError, ERROR_CODES, type ErrorCode } from '../errors/index.js';
import type { BuildResult } from '../engine/index.js';
import type { ProgramStepText } from '../frontend/dockerfile/convert/index.js';
import { writeFile } from 'node:fs/promises';
import type { Socket } from 'node:net';
import { connectUnix, NoAnswerError, requestOn, responseError, type RemoteEvent } from '../client/index.js';
import { localImageName } from '../oci/index.js';
import { createProgress, type ProgressEvent, type ProgressMode, type ProgressSink } from '../progress/index.js';

/*
 * The client side of a local hand-off (plain `kiln build` with a `kiln serve` on ROOT/kiln.sock), shared by the full
 * CLI (commands/remote.ts) and the lean entry (lean.ts). It imports only what sending the request and rendering its
 * progress needs: the lean bundle (dist/kiln-lean.mjs) is made from it, so nothing here may import the engine but
 * its types (scripts/bundle.mjs fails when the lean bundle grows heavy). The server sends the metadata file's
 * content with the result.
 */

/** What the hand-off sends besides the parsed flags: the resolved build input. */
export interface HandoffInput {
  contextDir: string;
  dockerfile?: string;
  dockerfileText?: string;
  /** a template's steps after its base text as Dockerfile text, each with the caller's file and line (the server's schema checks them) */
  steps?: ProgramStepText[];
  secrets: Array<{ id: string; file?: string }>;
}

/** Feed a `--progress=json` line (from the service or the local socket) to a progress display. */
export function replay(sink: ProgressSink, e: RemoteEvent): void {
  if (e.type === 'total') sink.setTotal(Number(e.steps));
  else if (e.type !== 'finish') sink.event(e as unknown as ProgressEvent);
}

export function info(sink: ProgressSink, message: string): void {
  sink.event({ type: 'info', message, at: Date.now() });
}

/** `--build-arg` values: NAME=VALUE, or NAME taken from this process's environment. */
export function buildArgsOf(list: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const a of list) {
    const eq = a.indexOf('=');
    if (eq < 0) {
      if (process.env[a] !== undefined) out[a] = process.env[a]!;
    } else out[a.slice(0, eq)] = a.slice(eq + 1);
  }
  return out;
}

/** `--secret id=ID,src=FILE` as files the server reads; undefined for an env secret (its value is in this process only). */
export function fileSecrets(specs: string[]): Array<{ id: string; file: string }> | undefined {
  const secrets: Array<{ id: string; file: string }> = [];
  for (const spec of specs) {
    const kv = Object.fromEntries(spec.split(',').map((p) => [p.slice(0, p.indexOf('=')), p.slice(p.indexOf('=') + 1)]));
    if (!kv.id || !(kv.src ?? kv.source)) return undefined;
    secrets.push({ id: kv.id, file: path.resolve((kv.src ?? kv.source)!) });
  }
  return secrets;
}

/**
 * A connection to the server behind ROOT/kiln.sock, or undefined when none answers (a socket left by a killed server
 * refuses): the build then goes on in this process. The request goes on this same connection (sendLocalBuild), so a
 * warm hand-off costs one connection and one request.
 */
export async function openLocalServer(socket: string): Promise<Socket | undefined> {
  return connectUnix(socket);
}

/** The request body of `POST /local/v1/builds` (src/server/local.ts checks it against its schema). */
function handoffBody(input: HandoffInput, o: Record<string, unknown>, secrets: Array<{ id: string; file: string }>): Record<string, unknown> {
  return {
    contextDir: path.resolve(input.contextDir),
    ...(input.dockerfile ? { dockerfile: path.resolve(input.dockerfile) } : {}),
    ...(input.dockerfileText !== undefined ? { dockerfileText: input.dockerfileText } : {}),
    ...(input.steps?.length ? { steps: input.steps } : {}),
    tags: o.tag as string[],
    buildArgs: buildArgsOf(o.buildArg as string[]),
    ...(o.target ? { target: o.target as string } : {}),
    ...(o.cache === false ? { noCache: true } : {}),
    noCacheFilter: (o.cacheFilter ?? o.noCacheFilter ?? []) as string[],
    ...(o.network === 'none' || o.network === 'isolated' ? { network: o.network } : {}),
    secrets: [...secrets, ...input.secrets.flatMap((s) => (s.file ? [{ id: s.id, file: s.file }] : []))],
  };
}

interface Streamed {
  result?: BuildResult;
  /** what --metadata-file holds (made by the server's engine) */
  metadataFile?: unknown;
  failure?: BuildError;
}

/** Read the server's JSON lines: progress to the display, the one `result` or `error` line kept. */
async function streamBuild(res: AsyncIterable<Buffer>, progress: ProgressSink): Promise<Streamed> {
  let result: BuildResult | undefined;
  let metadataFile: unknown;
  let failure: BuildError | undefined;
  let buf = '';
  for await (const chunk of res) {
    buf += chunk.toString('utf8');
    let nl: number;
    while ((nl = buf.indexOf('\n')) >= 0) {
      const e = JSON.parse(buf.slice(0, nl)) as RemoteEvent;
      buf = buf.slice(nl + 1);
      if (e.type === 'result') {
        result = e.result as BuildResult;
        metadataFile = e.metadataFile;
      }
      else if (e.type === 'error') failure = new BuildError(typeof e.code === 'string' && e.code in ERROR_CODES ? (e.code as ErrorCode) : 'ERR_KILN_INTERNAL', String(e.message));
      else replay(progress, e);
    }
  }
  return { ...(result ? { result, metadataFile } : {}), ...(failure ? { failure } : {}) };
}

/**
 * Send the build on `conn` (openLocalServer: ROOT/kiln.sock), show its progress, write what `kiln build` writes at
 * the end (metadata file, explain lines, the image line). `o` holds the build command's parsed flags (commander's
 * names). False when the server closed the connection without answering (one shutting down): nothing was shown,
 * and the caller builds in this process.
 */
export async function sendLocalBuild(conn: Socket, socket: string, input: HandoffInput, o: Record<string, unknown>, secrets: Array<{ id: string; file: string }>): Promise<boolean> {
  const ac = new AbortController();
  const onSig = (): void => ac.abort();
  process.once('SIGINT', onSig);
  process.once('SIGTERM', onSig);
  let progress: ProgressSink | undefined;
  let out: Streamed = {};
  try {
    const res = await requestOn(conn, { method: 'POST', path: '/local/v1/builds', headers: { 'content-type': 'application/json' }, body: JSON.stringify(handoffBody(input, o, secrets)), signal: ac.signal });
    progress = createProgress(o.quiet ? 'quiet' : (o.progress as ProgressMode));
    info(progress, `handing the build to kiln serve (${socket}); --no-daemon builds in this process`);
    if (res.status !== 200) throw await responseError(res);
    out = await streamBuild(res.body, progress);
  } catch (err) {
    if (err instanceof NoAnswerError && !progress) return false;
    if (ac.signal.aborted) out = { failure: new BuildError('ERR_KILN_INTERRUPTED', 'build interrupted (the server cancels it)') };
    else throw err;
  } finally {
    conn.destroy();
    process.off('SIGINT', onSig);
    process.off('SIGTERM', onSig);
  }
  progress ??= createProgress(o.quiet ? 'quiet' : (o.progress as ProgressMode));
  const result = out.result;
  if (!result) {
    progress.finish(false);
    throw out.failure ?? new BuildError('ERR_KILN_SERVICE_UNAVAILABLE', 'kiln serve stopped before the build finished');
  }
  progress.finish(true);
  if (o.metadataFile) await writeFile(path.resolve(o.metadataFile as string), `${JSON.stringify(out.metadataFile, null, 2)}\n`);
  if (o.iidfile) await writeFile(path.resolve(o.iidfile as string), result.configDigest);
  if (o.explain) for (const st of result.steps) if (!st.cached && st.missReason) process.stderr.write(`explain: ${st.name}: ${st.missReason}\n`);
  // the names as an in-process build prints them (`-t x` → `tagged x:latest`)
  const tags = (o.tag as string[]).map(localImageName);
  if (o.quiet) process.stdout.write(`${result.imageDigest}\n`);
  else process.stderr.write(`image ${result.imageDigest}${tags.length ? ` tagged ${tags.join(', ')}` : ''}\n`);
  return true;
}
