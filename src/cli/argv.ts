import { BuildError, formatUserError } from '../errors/index.js';

/*
 * What both CLI entries (the lean one, lean.ts, and the full one, main.ts) do with the raw command line before a
 * command runs. Light on purpose: the lean entry loads this before it knows whether it needs the rest.
 */

/** `--root DIR` is accepted anywhere on the command line (before or after the command name). */
export function extractRoot(argv: string[]): { argv: string[]; root?: string } {
  const out: string[] = [];
  let root: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--') {
      out.push(...argv.slice(i));
      break;
    }
    if (a === '--root') {
      root = argv[++i];
      if (root === undefined) throw new BuildError('ERR_KILN_ARGUMENT', '--root needs a directory');
    } else if (a.startsWith('--root=')) root = a.slice('--root='.length);
    else out.push(a);
  }
  return root !== undefined ? { argv: out, root } : { argv: out };
}

/** `--host URL` before the command name (a build service); later words belong to the command. */
export function extractHost(argv: string[]): { argv: string[]; host?: string } {
  const out: string[] = [];
  let host: string | undefined;
  let i = 0;
  for (; i < argv.length && argv[i]!.startsWith('-'); i++) {
    const a = argv[i]!;
    if (a === '--host') {
      host = argv[++i];
      if (host === undefined) throw new BuildError('ERR_KILN_ARGUMENT', '--host needs a URL (http://HOST:PORT or unix:/path)');
    } else if (a.startsWith('--host=')) host = a.slice('--host='.length);
    else out.push(a);
  }
  out.push(...argv.slice(i));
  return host !== undefined ? { argv: out, host } : { argv: out };
}

/** Output piped into a reader that went away (`kiln history ls | head -1`): drop it, never crash with a stack. */
export function ignoreBrokenPipes(): void {
  for (const out of [process.stdout, process.stderr]) {
    out.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code !== 'EPIPE') throw err;
    });
  }
}

/** A command's failure as the user sees it (the stack only with KILN_DEBUG); exit code 1. */
export function reportFailure(err: unknown): number {
  process.stderr.write(`${formatUserError(err)}\n`);
  if (process.env.KILN_DEBUG && err instanceof Error) process.stderr.write(`${err.stack}\n`);
  return 1;
}
