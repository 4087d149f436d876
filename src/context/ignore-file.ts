import path from 'node:path';
import { MAX_IGNORE_FILE_BYTES, readBoundedText } from './bounded-read.js';
import { cleanPath, trimSpace } from './path-utils.js';

/**
 * Parse the text of a .dockerignore file into patterns, as Docker's ignorefile reader does: drop a UTF-8 BOM,
 * skip lines whose first character is `#`, trim, skip blank lines, keep a leading `!` aside (trimming again
 * after it), clean the path and remove one leading `/`, then put the `!` back. A bare `!` is kept (the matcher
 * rejects it).
 *
 * @example
 * parseIgnoreFile('# deps\nnode_modules/\n!/node_modules/keep\n'); // ['node_modules', '!node_modules/keep']
 */
export function parseIgnoreFile(text: string): string[] {
  const body = text.startsWith('\uFEFF') ? text.slice(1) : text;
  const out: string[] = [];
  const lines = body.split('\n');
  if (lines.length > 0 && lines[lines.length - 1] === '') lines.pop();
  for (const rawLine of lines) {
    const line = rawLine.endsWith('\r') ? rawLine.slice(0, -1) : rawLine;
    if (line.startsWith('#')) continue;
    let pattern = trimSpace(line);
    if (pattern === '') continue;
    const invert = pattern.startsWith('!');
    if (invert) pattern = trimSpace(pattern.slice(1));
    if (pattern.length > 0) {
      pattern = cleanPath(pattern);
      if (pattern.length > 1 && pattern.startsWith('/')) pattern = pattern.slice(1);
    }
    out.push(invert ? `!${pattern}` : pattern);
  }
  return out;
}

async function readIfPresent(file: string, signal?: AbortSignal): Promise<string | null> {
  signal?.throwIfAborted();
  // a FIFO, device or directory named .dockerignore is refused at once, as is one over the size limit
  return readBoundedText({ file, what: '.dockerignore', maxBytes: MAX_IGNORE_FILE_BYTES });
}

/**
 * Read the ignore patterns for a build. `<Dockerfile name>.dockerignore` next to the Dockerfile wins when it
 * exists (a relative `dockerfilePath` is resolved against the current directory); otherwise
 * `<context>/.dockerignore`; otherwise no patterns.
 *
 * @example
 * const patterns = await readIgnorePatterns({ contextDir: '.', dockerfilePath: 'build/app.Dockerfile' });
 */
export async function readIgnorePatterns(opts: {
  contextDir: string;
  dockerfilePath?: string;
  signal?: AbortSignal;
}): Promise<string[]> {
  if (opts.dockerfilePath !== undefined) {
    const specific = await readIfPresent(`${path.resolve(opts.dockerfilePath)}.dockerignore`, opts.signal);
    if (specific !== null) return parseIgnoreFile(specific);
  }
  const generic = await readIfPresent(path.join(path.resolve(opts.contextDir), '.dockerignore'), opts.signal);
  return generic === null ? [] : parseIgnoreFile(generic);
}
