import { createWriteStream, mkdirSync, type WriteStream } from 'node:fs';
import { promises as fsp } from 'node:fs';
import path from 'node:path';

/** What the build log records (a subset of the solver's events). */
export type LogEvent =
  | { type: 'start'; vertex: { id: string; name: string; hidden?: boolean } }
  | { type: 'cached'; vertex: { id: string; name: string; hidden?: boolean } }
  | { type: 'done'; vertex: { id: string; name: string; hidden?: boolean }; result: { durationMs: number } }
  | { type: 'error'; vertex: { id: string; name: string; hidden?: boolean }; error: unknown }
  | { type: 'log'; vertex: { id: string; name: string; hidden?: boolean }; stream: 'stdout' | 'stderr'; data: Buffer };

/** A build's captured output, written as the build runs. */
export interface BuildLog {
  readonly file: string;
  event(e: LogEvent): void;
  /** a line outside any step (e.g. the GC summary) */
  note(line: string): void;
  close(): Promise<void>;
}

/** Path of a build's log. */
export function buildLogPath(root: string, buildId: string): string {
  return path.join(root, 'history', `${buildId}.log`);
}

/**
 * Capture a build's step output into `<root>/history/<id>.log` in BuildKit's plain-progress shape (`#N name`,
 * `#N output`, `#N DONE 0.4s`), at most `maxBytes` (then one truncation note).
 */
export function openBuildLog(opts: { root: string; buildId: string; maxBytes: number }): BuildLog {
  const file = buildLogPath(opts.root, opts.buildId);
  mkdirSync(path.dirname(file), { recursive: true });
  const out: WriteStream = createWriteStream(file, { flags: 'a' });
  out.on('error', () => undefined);
  const nums = new Map<string, number>();
  const partial = new Map<string, string>();
  let written = 0;
  let truncated = false;
  const write = (text: string): void => {
    if (truncated) return;
    const bytes = Buffer.byteLength(text);
    if (written + bytes > opts.maxBytes) {
      truncated = true;
      out.write(`[log truncated at ${opts.maxBytes} bytes]\n`);
      return;
    }
    written += bytes;
    out.write(text);
  };
  const num = (v: { id: string; name: string }): number => {
    let n = nums.get(v.id);
    if (n === undefined) {
      n = nums.size + 1;
      nums.set(v.id, n);
      write(`#${n} ${v.name}\n`);
    }
    return n;
  };
  const flush = (v: { id: string; name: string }): void => {
    const rest = partial.get(v.id);
    if (rest) write(`#${num(v)} ${rest}\n`);
    partial.delete(v.id);
  };
  return {
    file,
    event(e) {
      if (e.vertex.hidden && e.type !== 'error') return;
      const n = num(e.vertex);
      switch (e.type) {
        case 'start':
          break;
        case 'cached':
          write(`#${n} CACHED\n`);
          break;
        case 'done':
          flush(e.vertex);
          write(`#${n} DONE ${(e.result.durationMs / 1000).toFixed(1)}s\n`);
          break;
        case 'error':
          flush(e.vertex);
          write(`#${n} ERROR: ${e.error instanceof Error ? e.error.message.split('\n')[0] : String(e.error)}\n`);
          break;
        case 'log': {
          const text = (partial.get(e.vertex.id) ?? '') + e.data.toString('utf8');
          const lines = text.split('\n');
          partial.set(e.vertex.id, lines.pop() ?? '');
          for (const l of lines) write(`#${n} ${l}\n`);
          break;
        }
      }
    },
    note(line) {
      write(`${line}\n`);
    },
    close() {
      return new Promise((resolve) => out.end(() => resolve()));
    },
  };
}

/** The log of a build, or undefined when none was kept. */
export async function readBuildLog(root: string, buildId: string): Promise<string | undefined> {
  return fsp.readFile(buildLogPath(root, buildId), 'utf8').catch(() => undefined);
}
