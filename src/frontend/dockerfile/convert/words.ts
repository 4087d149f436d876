import { DockerfileError } from '../../../errors/index.js';
import type { ContainerConfig } from '../../../oci/index.js';
import { suggest, type ArgCommand, type Command } from '../instructions/index.js';
import type { ShellLexer } from '../shell/index.js';

/** Build args that never enter the cache key unless the Dockerfile declares them (BuildKit's proxy args). */
export const PROXY_ARGS = new Set([
  'HTTP_PROXY', 'http_proxy', 'HTTPS_PROXY', 'https_proxy', 'FTP_PROXY', 'ftp_proxy', 'NO_PROXY', 'no_proxy', 'ALL_PROXY', 'all_proxy',
]);

/** An ARG instruction's names into `into`: a --build-arg wins, then the written default, then a global ARG. */
export function declareArgs(
  cmd: ArgCommand,
  into: Map<string, string | undefined>,
  globals: Map<string, string | undefined>,
  buildArgs: Record<string, string>,
  lex: ShellLexer,
  lookup?: (n: string) => string | undefined,
): void {
  const look = lookup ?? ((n: string) => into.get(n));
  for (const a of cmd.args) {
    let value: string | undefined;
    if (Object.prototype.hasOwnProperty.call(buildArgs, a.key)) value = buildArgs[a.key];
    else if (a.value !== undefined) value = expand(lex, a.value, look, '', cmd.location.startLine);
    else if (into !== globals && globals.has(a.key)) value = globals.get(a.key);
    into.set(a.key, value);
  }
}

/** One word with its variables expanded; a bad substitution is a DockerfileError at `file:line`. */
export function expand(lex: ShellLexer, word: string, lookup: (n: string) => string | undefined, file: string, line: number): string {
  try {
    return lex.processWord(word, lookup);
  } catch (err) {
    throw new DockerfileError((err as Error).message, { file, line });
  }
}

/** The value of `name` in an `Env` list (the last entry wins), or undefined. */
export function findEnv(env: string[], name: string): string | undefined {
  for (let i = env.length - 1; i >= 0; i--) {
    const e = env[i]!;
    const eq = e.indexOf('=');
    if ((eq < 0 ? e : e.slice(0, eq)) === name) return eq < 0 ? '' : e.slice(eq + 1);
  }
  return undefined;
}

/**
 * A config's `Env` list with an index by name, updated in place (the config belongs to the stage being converted).
 * The list keeps Docker's order: a new name is appended, a redefined one keeps its place.
 */
export class EnvIndex {
  private readonly byName = new Map<string, number>();
  constructor(private readonly c: ContainerConfig) {
    (c.Env ?? []).forEach((e, i) => {
      const eq = e.indexOf('=');
      this.byName.set(eq < 0 ? e : e.slice(0, eq), i); // the last entry of a name wins, as findEnv reads it
    });
  }
  get(name: string): string | undefined {
    const i = this.byName.get(name);
    if (i === undefined) return undefined;
    const e = this.c.Env![i]!;
    const eq = e.indexOf('=');
    return eq < 0 ? '' : e.slice(eq + 1);
  }
  set(k: string, v: string): void {
    const list = (this.c.Env ??= []);
    const i = this.byName.get(k);
    if (i !== undefined) {
      list[i] = `${k}=${v}`;
      return;
    }
    this.byName.set(k, list.length);
    list.push(`${k}=${v}`);
  }
}

/** `p` against the working directory `cwd`, cleaned (`.`, `..` and repeated slashes resolved). */
export function resolvePath(cwd: string, p: string): string {
  const joined = p.startsWith('/') ? p : `${cwd.replace(/\/$/, '')}/${p}`;
  const parts: string[] = [];
  for (const seg of joined.split('/')) {
    if (seg === '' || seg === '.') continue;
    if (seg === '..') parts.pop();
    else parts.push(seg);
  }
  return `/${parts.join('/')}`;
}

function shellOf(c: ContainerConfig): string[] {
  return c.Shell && c.Shell.length > 0 ? c.Shell : ['/bin/sh', '-c'];
}

/** CMD / ENTRYPOINT: the exec form as written, the shell form through the stage's SHELL. */
export function commandLine(cmd: { cmdLine: string[]; prependShell: boolean }, c: ContainerConfig): string[] {
  if (cmd.prependShell) return [...shellOf(c), cmd.cmdLine.join(' ')];
  return cmd.cmdLine;
}

/** The argv of a RUN step, heredocs included. */
export function runArgs(cmd: Extract<Command, { name: 'run' }>, c: ContainerConfig): string[] {
  if (!cmd.prependShell) return cmd.cmdLine;
  let script = cmd.cmdLine.join(' ');
  if (cmd.files.length > 0) {
    const only = cmd.files.length === 1 && /^\s*\d*<<-?\s*['"]?[^\s'"]+['"]?\s*$/.test(script);
    if (only) {
      const body = cmd.files[0]!.chomp ? cmd.files[0]!.content.replace(/^\t+/gm, '') : cmd.files[0]!.content;
      if (body.startsWith('#!')) {
        // a script with its own interpreter: let the shell write and run it
        const delim = 'KILN_HEREDOC_EOF';
        return [...shellOf(c), `f=$(mktemp) && cat > "$f" <<'${delim}'\n${body}${delim}\nchmod +x "$f" && "$f"; r=$?; rm -f "$f"; exit $r`];
      }
      return [...shellOf(c), body];
    }
    // the heredocs stay part of the shell script, as the shell reads them
    const parts = [script];
    for (const h of cmd.files) parts.push(`${h.content}${h.name}`);
    script = parts.join('\n');
  }
  return [...shellOf(c), script];
}

/** True when a CMD comes before `entry` in the stage. */
export function stageHasCmdBefore(commands: Command[], entry: Command): boolean {
  for (const c of commands) {
    if (c === entry) return false;
    if (c.name === 'cmd') return true;
  }
  return false;
}

/** `8000-8002/udp` → `8000/udp`, `8001/udp`, `8002/udp`. */
export function expandPorts(p: string, file: string, line: number): string[] {
  const m = /^(\d+)(?:-(\d+))?(?:\/(tcp|udp|sctp))?$/i.exec(p);
  if (!m) throw new DockerfileError(`invalid port "${p}" in EXPOSE`, { file, line });
  const proto = (m[3] ?? 'tcp').toLowerCase();
  const a = Number(m[1]);
  const b = m[2] ? Number(m[2]) : a;
  const out: string[] = [];
  for (let i = a; i <= b; i++) out.push(`${i}/${proto}`);
  return out;
}

/** The instruction as progress shows it: on one line. */
export function displayText(cmd: Command): string {
  return cmd.original.replace(/\s*\n\s*/g, ' ').trim();
}

/** The image history's `created_by`, as BuildKit writes it. */
export function historyText(cmd: Command): string {
  const t = displayText(cmd);
  return cmd.name === 'run' ? `RUN ${t.replace(/^run\s+/i, '')} # buildkit` : `${t} # buildkit`;
}

/** Build args BuildKit consumes without an ARG: proxies, its own settings, and the reproducibility epoch. */
function isPredefinedArg(name: string): boolean {
  return PROXY_ARGS.has(name) || name.startsWith('BUILDKIT_') || name === 'SOURCE_DATE_EPOCH';
}

/**
 * BuildKit's warning for build args no ARG of the built stages declares, with the declared name each nearly matches
 * (a typo such as GREETNG for GREETING).
 */
export function unconsumedArgsWarning(buildArgs: Record<string, string>, declared: Set<string>, auto: string[]): string[] {
  const unused = Object.keys(buildArgs).filter((k) => !declared.has(k) && !auto.includes(k) && !isPredefinedArg(k)).sort();
  if (unused.length === 0) return [];
  const names = [...declared];
  const hints = unused.flatMap((k) => {
    const m = suggest(k, names, true);
    return m === undefined ? [] : [`${k} → did you mean ${m}?`];
  });
  return [`[Warning] One or more build-args [${unused.join(' ')}] were not consumed${hints.length ? ` (${hints.join('; ')})` : ''}`];
}
