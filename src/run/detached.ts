/**
 * `kiln run -d`: the container runs under a supervising kiln process of its own (a new session, so the terminal's
 * signals and hang-up do not reach it), which creates the record, writes the container's output to its log and
 * records how it ended. Because the supervisor owns the container's runc id, snapshot, network and volume marks, the
 * crash cleanup of any later kiln command (which removes what dead processes left) leaves a live container alone, and
 * removes it once its supervisor is gone. The request reaches the supervisor on its stdin (JSON); the supervisor
 * reports on fd 3, one JSON line each: `{"id"}` once recorded, then `{"started":true}` or `{"error","code","status"}`.
 */
import { spawn } from 'node:child_process';
import { closeSync, openSync, writeSync } from 'node:fs';
import { BuildError, ERROR_CODES, type ErrorCode } from '../errors/index.js';
import type { State } from '../engine/index.js';
import { containerLog, createContainerRecord, type ContainerConfig } from './containers.js';
import { EXIT_KILN_ERROR, exitStatusOf, runRecorded } from './lifecycle.js';

/** What `kiln run -d` hands its supervisor. */
export interface DetachedRequest {
  name?: string;
  config: ContainerConfig;
  autoRemove: boolean;
}

interface Report {
  id?: string;
  started?: boolean;
  error?: string;
  code?: string;
  status?: number;
}

const REPORT_FD = 3;

/**
 * Start a supervisor (`command args...`, a kiln process that calls {@link superviseDetached}) and resolve with the
 * container's id once its process runs.
 *
 * @throws BuildError what the supervisor reported (`details.exitStatus`: the status `kiln run` exits with)
 */
export async function startDetached(opts: { request: DetachedRequest; command: string; args: string[] }): Promise<{ id: string }> {
  const child = spawn(opts.command, opts.args, { detached: true, cwd: '/', stdio: ['pipe', 'ignore', 'ignore', 'pipe'] });
  child.stdin!.on('error', () => undefined);
  child.stdin!.end(JSON.stringify(opts.request));
  const reports = child.stdio[REPORT_FD] as NodeJS.ReadableStream;
  let text = '';
  const done = await new Promise<Report>((resolve) => {
    let id: string | undefined;
    const settle = (r: Report): void => {
      reports.removeAllListeners('data');
      resolve(r);
    };
    reports.on('data', (c: Buffer) => {
      text += c.toString('utf8');
      for (let nl = text.indexOf('\n'); nl >= 0; nl = text.indexOf('\n')) {
        const r = JSON.parse(text.slice(0, nl)) as Report;
        text = text.slice(nl + 1);
        if (r.id) id = r.id;
        if (r.started || r.error) return settle({ ...r, ...(id ? { id } : {}) });
      }
    });
    reports.on('end', () => settle({ error: 'the supervising process exited before the container started', ...(id ? { id } : {}) }));
    child.once('error', (err) => settle({ error: `cannot start the supervising process: ${err.message}` }));
  });
  (reports as unknown as { destroy(): void }).destroy();
  child.unref();
  if (done.started && done.id) return { id: done.id };
  const code = done.code && done.code in ERROR_CODES ? (done.code as ErrorCode) : 'ERR_KILN_EXEC_START';
  throw new BuildError(code, done.error ?? 'the container did not start', { details: { exitStatus: done.status ?? EXIT_KILN_ERROR, ...(done.id ? { id: done.id } : {}) } });
}

/**
 * The supervisor's side: read the request from `input`, record the container, run it with its output in the log, and
 * report on fd 3. Resolves when the container has exited (SIGTERM, SIGINT and SIGHUP stop it).
 */
export async function superviseDetached(opts: { state: State; input: string }): Promise<void> {
  let reporting = true;
  const report = (r: Report, last = false): void => {
    if (!reporting) return;
    try {
      writeSync(REPORT_FD, `${JSON.stringify(r)}\n`);
    } catch {
      /* `kiln run -d` is gone: nobody to tell */
    }
    if (!last) return;
    // closed once: the number may be reused by a file opened later, which must not get reports
    reporting = false;
    closeFd(REPORT_FD);
  };
  const ac = new AbortController();
  const onSignal = (): void => ac.abort(new BuildError('ERR_KILN_ARGUMENT', 'stopped'));
  for (const s of ['SIGTERM', 'SIGINT', 'SIGHUP'] as const) process.on(s, onSignal);
  let log: number | undefined;
  try {
    const req = JSON.parse(opts.input) as DetachedRequest;
    const rec = await createContainerRecord({ root: opts.state.root, ...(req.name !== undefined ? { name: req.name } : {}), config: req.config, detached: true, autoRemove: req.autoRemove });
    report({ id: rec.id });
    const fd = openSync(containerLog(opts.state.root, rec.id), 'a', 0o600);
    log = fd;
    const write = (c: Buffer): void => {
      writeSync(fd, c);
    };
    await runRecorded({
      state: opts.state,
      record: rec,
      ...(req.config.interactive || req.config.tty ? { stdin: 'open' as const } : {}),
      onStdout: write,
      onStderr: write,
      onStarted: () => report({ started: true }, true),
      signal: ac.signal,
    });
    // it ran and ended before it was seen running
    report({ started: true }, true);
  } catch (err) {
    const e = err as { message?: string; code?: string };
    if (log !== undefined) writeSync(log, `kiln: ${e.message ?? String(err)}\n`);
    report({ error: e.message ?? String(err), ...(typeof e.code === 'string' ? { code: e.code } : {}), status: exitStatusOf(err) }, true);
  } finally {
    for (const s of ['SIGTERM', 'SIGINT', 'SIGHUP'] as const) process.off(s, onSignal);
    if (log !== undefined) closeFd(log);
    report({}, true);
  }
}

function closeFd(fd: number): void {
  try {
    closeSync(fd);
  } catch {
    /* already closed */
  }
}
