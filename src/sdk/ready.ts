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
  // ss where the image has it (E2B's check), else the kernel's own table (any image with a shell and grep)
  const hex = port.toString(16).toUpperCase().padStart(4, '0');
  return { kind: 'port', port, cmd: `ss -tln 2>/dev/null | grep -q ':${port} ' || grep -qi ':${hex} [0-9A-F]*:0000 0A' /proc/net/tcp /proc/net/tcp6 2>/dev/null` };
}

/**
 * Ready when a GET of this URL answers with the status code (default 200).
 *
 * @example
 * t.setStartCmd('python3 app.py', waitForURL('http://localhost:8000/health'));
 */
export function waitForURL(url: string, statusCode = 200): ReadyCheck {
  if (!/^https?:\/\//.test(url)) throw invalid(`waitForURL: "${url}" is not an http(s) URL`);
  // whichever client the image has: curl, wget (busybox's prints the status line with -S), python3, node
  const q = shellQuote(url);
  const py = shellQuote('import sys,urllib.request as u\ntry: c=u.urlopen(sys.argv[1],timeout=2).status\nexcept Exception as e: c=getattr(e,"code",0)\nsys.exit(0 if c==int(sys.argv[2]) else 1)');
  const js = shellQuote('fetch(process.argv[1]).then((r)=>process.exit(r.status===Number(process.argv[2])?0:1),()=>process.exit(1))');
  const cmd = [
    `curl -s -o /dev/null -w '%{http_code}' ${q} 2>/dev/null | grep -q '^${statusCode}$'`,
    `wget -S -q -O /dev/null ${q} 2>&1 | grep -q 'HTTP/[0-9.]* ${statusCode}'`,
    `python3 -c ${py} ${q} ${statusCode} 2>/dev/null`,
    `node -e ${js} ${q} ${statusCode} 2>/dev/null`,
  ].join(' || ');
  return { kind: 'url', url, statusCode, cmd };
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
  // pgrep where the image has it, else the kernel's process names
  const q = shellQuote(name);
  return { kind: 'process', process: name, cmd: `pgrep -x ${q} >/dev/null 2>&1 || cat /proc/[0-9]*/comm 2>/dev/null | grep -qx ${q}` };
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

/**
 * Ready when this shell command exits 0 (what a string given to `setStartCmd` or `setReadyCmd` becomes).
 *
 * @example
 * t.setStartCmd('./serve', waitForCommand('test -S /run/app.sock'));
 */
export function waitForCommand(cmd: string): ReadyCheck {
  if (typeof cmd !== 'string' || cmd.trim() === '') throw invalid('ready command: give a shell command');
  return { kind: 'command', cmd };
}

/** How messages name a ready check: `waitForPort(8000)`, `waitForURL(http://...)`, `ready command "..."`. */
export function readyLabel(r: ReadyCheck | undefined): string {
  if (!r) return 'the start command keeps running for 2 s';
  switch (r.kind) {
    case 'port':
      return `waitForPort(${r.port})`;
    case 'url':
      return `waitForURL(${r.url}${r.statusCode !== undefined && r.statusCode !== 200 ? `, ${r.statusCode}` : ''})`;
    case 'file':
      return `waitForFile(${r.path})`;
    case 'process':
      return `waitForProcess(${r.process})`;
    case 'timeout':
      return `waitForTimeout(${r.timeoutMs})`;
    default:
      return `ready command "${r.cmd}"`;
  }
}
