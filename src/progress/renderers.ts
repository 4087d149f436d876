import pc from 'picocolors';
import type { ProgressEvent, ProgressMode, ProgressSink } from './types.js';

interface Out {
  write(s: string): unknown;
  isTTY?: boolean;
  columns?: number;
}

const secs = (ms: number): string => `${(ms / 1000).toFixed(1)}s`;

/** BuildKit's `--progress=plain`: `#N name`, log lines, `#N CACHED` / `#N DONE 1.2s`. */
export function createPlainProgress(out: Out): ProgressSink {
  const nums = new Map<string, number>();
  const starts = new Map<string, number>();
  let next = 0;
  const num = (id: string, name: string): number => {
    let n = nums.get(id);
    if (n === undefined) {
      n = ++next;
      nums.set(id, n);
      out.write(`#${n} ${name}\n`);
    }
    return n;
  };
  return {
    setTotal() {},
    event(e) {
      switch (e.type) {
        case 'step-start':
          num(e.id, e.name);
          starts.set(e.id, e.at);
          break;
        case 'step-cached':
          out.write(`#${num(e.id, e.name)} CACHED\n\n`);
          break;
        case 'step-done':
          out.write(`#${num(e.id, e.name)} DONE ${secs(e.durationMs)}\n\n`);
          break;
        case 'step-error':
          out.write(`#${num(e.id, e.name)} ERROR: ${e.error}\n\n`);
          break;
        case 'log': {
          const n = num(e.id, e.name);
          const t = secs(e.at - (starts.get(e.id) ?? e.at)).replace('s', '');
          for (const line of e.data.replace(/\n$/, '').split('\n')) out.write(`#${n} ${t} ${line}\n`);
          break;
        }
        case 'info':
          out.write(`${e.message}\n`);
          break;
      }
    },
    finish() {},
  };
}

/** One JSON object per line, for machines. */
export function createJsonProgress(out: Out): ProgressSink {
  return {
    setTotal(n) {
      out.write(`${JSON.stringify({ type: 'total', steps: n })}\n`);
    },
    event(e) {
      out.write(`${JSON.stringify(e)}\n`);
    },
    finish(ok) {
      out.write(`${JSON.stringify({ type: 'finish', ok, at: Date.now() })}\n`);
    },
  };
}

/** BuildKit's tty display: `[+] Building 1.2s (6/6) FINISHED` over one line per step, redrawn in place. */
export function createTtyProgress(out: Out): ProgressSink {
  const started = Date.now();
  interface Row { name: string; state: 'running' | 'cached' | 'done' | 'error'; start: number; dur?: number; logs: string[] }
  const rows = new Map<string, Row>();
  let total = 0;
  let drawn = 0;
  let timer: NodeJS.Timeout | undefined;
  let finished = false;
  const infos: string[] = [];
  const width = (): number => Math.max(40, (out.columns ?? 100) - 1);
  const render = (final: boolean, ok = true): void => {
    const lines: string[] = [];
    const done = [...rows.values()].filter((r) => r.state !== 'running').length;
    const state = final ? (ok ? 'FINISHED' : 'FAILED') : '';
    lines.push(`${pc.blue('[+]')} Building ${secs(Date.now() - started)} (${done}/${Math.max(total, rows.size)}) ${state}`.trimEnd());
    for (const r of rows.values()) {
      const t = r.state === 'running' ? secs(Date.now() - r.start) : r.dur !== undefined ? secs(r.dur) : '';
      const label = r.state === 'cached' ? `${pc.blue('=> CACHED')} ${r.name}` : r.state === 'error' ? `${pc.red('=> ERROR')} ${r.name}` : `=> ${r.name}`;
      const plainLen = label.replace(/\x1b\[[0-9;]*m/g, '').length;
      const room = width() - t.length - 1;
      const shown = plainLen > room ? `${label.slice(0, Math.max(10, room - 3 + (label.length - plainLen)))}...` : label;
      const pad = Math.max(1, width() - Math.min(plainLen, room) - t.length);
      lines.push(`${shown}${' '.repeat(pad)}${t}`);
      if (r.state === 'running' && !final) for (const l of r.logs.slice(-6)) lines.push(pc.dim(` => => # ${l}`.slice(0, width())));
    }
    let s = drawn > 0 ? `\x1b[${drawn}A` : '';
    for (const l of lines) s += `\x1b[2K${l}\n`;
    for (let i = lines.length; i < drawn; i++) s += '\x1b[2K\n';
    if (drawn > lines.length) s += `\x1b[${drawn - lines.length}A`;
    out.write(s);
    drawn = lines.length;
  };
  const schedule = (): void => {
    if (!timer && !finished) timer = setTimeout(() => {
      timer = undefined;
      render(false);
    }, 100);
  };
  const interval = setInterval(() => render(false), 500);
  interval.unref();
  return {
    setTotal(n) {
      total = n;
    },
    event(e) {
      switch (e.type) {
        case 'step-start':
          rows.set(e.id, { name: e.name, state: 'running', start: e.at, logs: [] });
          break;
        case 'step-cached':
          rows.set(e.id, { name: e.name, state: 'cached', start: e.at, logs: [] });
          break;
        case 'step-done': {
          const r = rows.get(e.id) ?? { name: e.name, state: 'done', start: e.at, logs: [] };
          r.state = 'done';
          r.dur = e.durationMs;
          rows.set(e.id, r);
          break;
        }
        case 'step-error': {
          const r = rows.get(e.id) ?? { name: e.name, state: 'error', start: e.at, logs: [] };
          r.state = 'error';
          r.dur = e.at - r.start;
          rows.set(e.id, r);
          break;
        }
        case 'log': {
          const r = rows.get(e.id);
          if (r) for (const l of e.data.replace(/\n$/, '').split('\n')) r.logs.push(l);
          break;
        }
        case 'info':
          infos.push(e.message);
          break;
      }
      schedule();
    },
    finish(ok) {
      finished = true;
      if (timer) clearTimeout(timer);
      clearInterval(interval);
      render(true, ok);
      // messages such as the automatic GC line, printed under the finished display
      for (const m of infos) out.write(`${m}\n`);
    },
  };
}

export function createProgress(mode: ProgressMode, out: Out = process.stderr): ProgressSink {
  const m = mode === 'auto' ? (out.isTTY ? 'tty' : 'plain') : mode;
  if (m === 'tty') return createTtyProgress(out);
  if (m === 'json') return createJsonProgress(out);
  if (m === 'quiet') return { setTotal() {}, event() {}, finish() {} };
  return createPlainProgress(out);
}
