import { BuildError } from '../errors/index.js';
import { shellQuote } from './render.js';
import type { ReadyCheck } from './types.js';

function invalid(message: string): BuildError {
  return new BuildError('ERR_KILN_TEMPLATE_INVALID', message);
}

/**
 * Ready when something listens on this TCP port.
 *
 * @example
 * Template().fromNodeImage().setStartCmd('node server.js', waitForPort(3000));
 */
export function waitForPort(port: number): ReadyCheck {
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw invalid(`waitForPort: ${port} is not a TCP port`);
  return { kind: 'port', port, cmd: `ss -tln | grep -q ':${port} '` };
}

/**
 * Ready when a GET of this URL answers with the status code (default 200).
 *
 * @example
 * t.setStartCmd('python3 app.py', waitForURL('http://localhost:8000/health'));
 */
export function waitForURL(url: string, statusCode = 200): ReadyCheck {
  if (!/^https?:\/\//.test(url)) throw invalid(`waitForURL: "${url}" is not an http(s) URL`);
  return { kind: 'url', url, statusCode, cmd: `curl -s -o /dev/null -w '%{http_code}' ${shellQuote(url)} | grep -q '^${statusCode}$'` };
}

/**
 * Ready when this file exists.
 *
 * @example
 * t.setStartCmd('./start.sh', waitForFile('/tmp/ready'));
 */
export function waitForFile(path: string): ReadyCheck {
  if (!path) throw invalid('waitForFile: give a path');
  return { kind: 'file', path, cmd: `test -e ${shellQuote(path)}` };
}

/**
 * Ready when a process with this name runs.
 *
 * @example
 * t.setStartCmd('supervisord', waitForProcess('nginx'));
 */
export function waitForProcess(name: string): ReadyCheck {
  if (!name) throw invalid('waitForProcess: give a process name');
  return { kind: 'process', process: name, cmd: `pgrep -x ${shellQuote(name)} >/dev/null` };
}

/**
 * Ready after a fixed time.
 *
 * @example
 * t.setStartCmd('./warmup.sh', waitForTimeout(5_000));
 */
export function waitForTimeout(ms: number): ReadyCheck {
  if (!Number.isFinite(ms) || ms < 0) throw invalid(`waitForTimeout: ${ms} is not a duration in milliseconds`);
  return { kind: 'timeout', timeoutMs: ms, cmd: `sleep ${Math.ceil(ms / 1000)}` };
}
