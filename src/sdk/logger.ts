import type { LogEntry } from './types.js';

const LEVELS = ['debug', 'info', 'warn', 'error'] as const;

/** A log entry in E2B's shape; `toString()` gives `HH:MM:SS level message`. */
export function logEntry(level: LogEntry['level'], message: string, timestamp = new Date()): LogEntry {
  return {
    timestamp,
    level,
    message,
    toString() {
      return `${timestamp.toISOString().slice(11, 19)} ${level.toUpperCase().padEnd(5)} ${message}`;
    },
  };
}

/** Options of {@link defaultBuildLogger}. */
export interface BuildLoggerOptions {
  /** leave out entries below this level (default `info`) */
  minLevel?: LogEntry['level'];
  /** where to write (default process.stderr) */
  write?: (line: string) => void;
}

/**
 * A ready `onBuildLogs` callback (E2B's `defaultBuildLogger`): one line per entry on stderr.
 *
 * @example
 * await Template.build(t, 'my-template', { onBuildLogs: defaultBuildLogger() });
 */
export function defaultBuildLogger(options: BuildLoggerOptions = {}): (entry: LogEntry) => void {
  const min = LEVELS.indexOf(options.minLevel ?? 'info');
  const write = options.write ?? ((line: string) => void process.stderr.write(line));
  return (entry) => {
    if (LEVELS.indexOf(entry.level) < min) return;
    for (const line of entry.message.replace(/\n$/, '').split('\n')) write(`${logEntry(entry.level, line, entry.timestamp).toString()}\n`);
  };
}
