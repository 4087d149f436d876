import { existsSync, statSync } from 'node:fs';
import path from 'node:path';
import { defaultRoot } from '../stateroot/index.js';
import { extractHost, extractRoot, ignoreBrokenPipes, reportFailure } from './argv.js';
import { fileSecrets, openLocalServer, sendLocalBuild } from './handoff.js';
import { version } from './version.js';

/*
 * The `kiln` command's entry (bin/kiln → dist/kiln-lean.cjs, from lean-entry.ts). It takes two cases itself, before commander and the
 * engine are loaded: `kiln --version`, and a plain `kiln build` that a `kiln serve` on ROOT/kiln.sock takes (the
 * local hand-off). Everything else — and any build command line it does not fully understand — goes to the full
 * CLI (main.ts), which behaves as it always did; so this parser only has to know the flags it accepts.
 */

/** Build flags the fast path carries, by their commander names; `true` = repeatable. */
const VALUE_FLAGS: Record<string, [string, boolean]> = {
  '-t': ['tag', true], '--tag': ['tag', true], '--build-arg': ['buildArg', true], '--secret': ['secret', true],
  '--no-cache-filter': ['cacheFilter', true], '-f': ['file', false], '--file': ['file', false], '--target': ['target', false],
  '--network': ['network', false], '--progress': ['progress', false], '--metadata-file': ['metadataFile', false],
};
const BOOL_FLAGS: Record<string, [string, boolean]> = { '--no-cache': ['cache', false], '-q': ['quiet', true], '--quiet': ['quiet', true], '--explain': ['explain', true] };
const CHOICES: Record<string, string[]> = { progress: ['auto', 'tty', 'plain', 'json', 'quiet'], network: ['default', 'host', 'none', 'isolated'] };

/** `build` flags as commander would give them, or undefined for anything this parser does not take. */
export function parseLeanBuild(args: string[]): { context: string; o: Record<string, unknown> } | undefined {
  const o: Record<string, unknown> = { tag: [], buildArg: [], secret: [], cacheFilter: [], progress: 'auto', network: 'default' };
  let context: string | undefined;
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    const eq = a.startsWith('--') ? a.indexOf('=') : -1;
    const flag = eq > 0 ? a.slice(0, eq) : a;
    if (BOOL_FLAGS[flag] && eq < 0) {
      o[BOOL_FLAGS[flag][0]] = BOOL_FLAGS[flag][1];
      continue;
    }
    const spec = VALUE_FLAGS[flag];
    if (spec) {
      const v = eq > 0 ? a.slice(eq + 1) : args[++i];
      if (v === undefined || (eq < 0 && v.startsWith('-'))) return undefined;
      if (CHOICES[spec[0]] && !CHOICES[spec[0]]!.includes(v)) return undefined;
      o[spec[0]] = spec[1] ? [...(o[spec[0]] as string[]), v] : v;
      continue;
    }
    if (a.startsWith('-') || context !== undefined) return undefined;
    context = a;
  }
  return context === undefined ? undefined : { context, o };
}

/**
 * Whether a local hand-off carries the network asked for: all four modes. The server on ROOT/kiln.sock builds as
 * this machine's root does in-process, so `host` is `default` (the host's network) and `none` and `isolated` are
 * passed on. (A remote build carries only default and none: the service's policy decides the rest.)
 */
export function handoffCarriesNetwork(o: Record<string, unknown>): boolean {
  return o.network === 'default' || o.network === 'host' || o.network === 'none' || o.network === 'isolated';
}

/** The hand-off of a Dockerfile build (templates and planned app folders go through the full CLI). */
async function leanHandoff(argv: string[], root: string | undefined): Promise<number | undefined> {
  if (argv[0] !== 'build' || process.env.KILN_HOST) return undefined;
  const parsed = parseLeanBuild(argv.slice(1));
  if (!parsed || !handoffCarriesNetwork(parsed.o)) return undefined;
  const { context, o } = parsed;
  const file = o.file as string | undefined;
  if (file === '-' || !existsSync(context) || !statSync(context).isDirectory() || (file === undefined && !existsSync(path.join(context, 'Dockerfile')))) return undefined;
  const socket = path.join(path.resolve(root ?? defaultRoot()), 'kiln.sock');
  if (!existsSync(socket)) return undefined;
  const secrets = fileSecrets(o.secret as string[]);
  if (!secrets) return undefined;
  const conn = await openLocalServer(socket);
  if (!conn) return undefined;
  try {
    return (await sendLocalBuild(conn, socket, { contextDir: context, ...(file ? { dockerfile: file } : {}), secrets: [] }, o, secrets)) ? 0 : undefined;
  } catch (err) {
    return reportFailure(err);
  }
}

/** The fast cases, or undefined: the full CLI takes the command line. */
async function fastPath(rawArgv: string[]): Promise<number | undefined> {
  try {
    const rooted = extractRoot(rawArgv);
    const { argv, host } = extractHost(rooted.argv);
    if (argv.length === 1 && (argv[0] === '--version' || argv[0] === '-v')) {
      process.stdout.write(`${version()}\n`);
      return 0;
    }
    if (host !== undefined) return undefined;
    return await leanHandoff(argv, rooted.root);
  } catch {
    return undefined; // a bad --root/--host: the full CLI says what is wrong
  }
}

/** The full CLI, by a path the bundler does not follow (it is its own bundle, dist/kiln.mjs). */
async function loadFullCli(): Promise<{ main(argv: string[]): Promise<number> }> {
  const here = import.meta.url;
  const rel = /\/kiln-lean\.cjs$/.test(new URL(here).pathname) ? './kiln.mjs' : './main.js';
  return (await import(new URL(rel, here).href)) as { main(argv: string[]): Promise<number> };
}

export async function main(rawArgv: string[]): Promise<number> {
  ignoreBrokenPipes();
  const code = await fastPath(rawArgv);
  if (code !== undefined) return code;
  return (await loadFullCli()).main(rawArgv);
}
