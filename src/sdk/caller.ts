import path from 'node:path';
import { fileURLToPath } from 'node:url';

const SDK_DIR = path.dirname(fileURLToPath(import.meta.url));

/**
 * The folder of the file that called into the SDK (the first stack frame outside this folder), or undefined when it
 * cannot be told (REPL, eval). Template files run through tsx report their .ts path.
 */
export function callerDir(): string | undefined {
  const stack = new Error().stack ?? '';
  for (const line of stack.split('\n').slice(1)) {
    const m = /\((.*):\d+:\d+\)\s*$/.exec(line) ?? /at (.*):\d+:\d+\s*$/.exec(line);
    if (!m) continue;
    let file = m[1]!.replace(/^async /, '');
    if (file.startsWith('node:') || file.startsWith('internal/')) continue;
    if (file.startsWith('file://')) {
      try {
        file = fileURLToPath(file.replace(/\?.*$/, ''));
      } catch {
        continue;
      }
    }
    if (!path.isAbsolute(file)) continue;
    if (path.dirname(file) === SDK_DIR && /^(caller|template)\.[cm]?[jt]s$/.test(path.basename(file))) continue;
    return path.dirname(file);
  }
  return undefined;
}
