/**
 * Typed instruction to Dockerfile text: the inverse of parseInstruction for the records kiln makes (the SDK's steps,
 * src/frontend/dockerfile/instructions/make.ts). Words are written as the record holds them (unexpanded, with their
 * quotes); what the text form itself needs is quoted here: exec-form and JSON-form arguments, flag values with
 * spaces or quotes, heredoc bodies.
 */
import type { Command, CopyCommand, HealthcheckCommand, KeyValue, RunCommand, ShellDependantCmd } from './types.js';

/** A flag `--name=value`, the value in double quotes when it has spaces or quotes (the parser takes them off). */
function flag(name: string, value: string): string {
  if (!/[\s"'\\]/.test(value)) return `--${name}=${value}`;
  return `--${name}="${value.replace(/["\\]/g, (c) => `\\${c}`)}"`;
}

/** An argv in exec (JSON) form, as the SDK has always written it: `["a","b"]`. */
function execForm(argv: string[]): string {
  return JSON.stringify(argv);
}

/** Words in the plain form when every word is plain, else the JSON form `["a b", "c"]`. */
function wordsForm(words: string[]): string {
  if (words.every((w) => w !== '' && /^[^\s"'[\\$]+$/.test(w))) return words.join(' ');
  return `[${words.map((w) => JSON.stringify(w)).join(', ')}]`;
}

function pairs(kvs: KeyValue[]): string {
  return kvs.map((kv) => (kv.noDelim ? `${kv.key} ${kv.value}` : `${kv.key}=${kv.value}`)).join(' ');
}

/** The heredoc bodies after the instruction line: each body, then its delimiter. */
function heredocBodies(files: Array<{ name: string; content: string }>): string {
  return files.map((f) => `\n${f.content}${f.name}`).join('');
}

function shellDependant(keyword: string, flags: string[], c: ShellDependantCmd): string {
  const head = [keyword, ...flags].join(' ');
  if (!c.prependShell) return `${head} ${execForm(c.cmdLine)}`;
  return `${head} ${c.cmdLine.join(' ')}${heredocBodies(c.files)}`;
}

function runFlags(c: RunCommand): string[] {
  const used = c.flagsUsed ?? [];
  const out = c.mounts.map((m) => flag('mount', m));
  if (used.includes('network') || c.network !== 'default') out.push(flag('network', c.network));
  if (used.includes('security') || c.security !== 'sandbox') out.push(flag('security', c.security));
  for (const d of c.devices ?? []) out.push(flag('device', d));
  return out;
}

function copyText(c: CopyCommand): string {
  const flags: string[] = [];
  if (c.from) flags.push(flag('from', c.from));
  if (c.chown) flags.push(flag('chown', c.chown));
  if (c.chmod) flags.push(flag('chmod', c.chmod));
  if (c.link) flags.push('--link');
  if (c.parents) flags.push('--parents');
  for (const e of c.excludes) flags.push(flag('exclude', e));
  if (c.checksum) flags.push(flag('checksum', c.checksum));
  if (c.keepGitDir !== undefined) flags.push(`--keep-git-dir=${c.keepGitDir}`);
  if (c.unpack !== undefined) flags.push(`--unpack=${c.unpack}`);
  const inline = c.sourceContents.map((s) => (s.expand ? `<<${s.path}` : `<<'${s.path}'`));
  const words = inline.length > 0 ? [...inline, ...c.sources, c.dest].join(' ') : wordsForm([...c.sources, c.dest]);
  return `${[c.name.toUpperCase(), ...flags].join(' ')} ${words}${heredocBodies(c.sourceContents.map((s) => ({ name: s.path, content: s.data })))}`;
}

/** A Go duration in nanoseconds, as HEALTHCHECK reads it. */
function duration(ns: number): string {
  return `${ns}ns`;
}

function healthcheckText(c: HealthcheckCommand): string {
  if (c.test[0] === 'NONE') return 'HEALTHCHECK NONE';
  const flags: string[] = [];
  if (c.interval) flags.push(`--interval=${duration(c.interval)}`);
  if (c.timeout) flags.push(`--timeout=${duration(c.timeout)}`);
  if (c.startPeriod) flags.push(`--start-period=${duration(c.startPeriod)}`);
  if (c.startInterval) flags.push(`--start-interval=${duration(c.startInterval)}`);
  if (c.retries) flags.push(`--retries=${c.retries}`);
  const cmd = c.test[0] === 'CMD-SHELL' ? c.test.slice(1).join(' ') : execForm(c.test.slice(1));
  return `${['HEALTHCHECK', ...flags].join(' ')} CMD ${cmd}`;
}

/**
 * An instruction as Dockerfile text (a RUN or COPY with heredocs takes several lines). For every record the
 * constructors in make.ts build, parsing the text gives the same record back (src/sdk/wire.test.ts proves it for
 * quoting-hostile values); `programStepText` checks that before text leaves the process.
 *
 * @example
 * renderCommand(makeEnv({ env: [{ key: 'A', value: '"two words"' }] })) // 'ENV A="two words"'
 */
export function renderCommand(cmd: Command): string {
  switch (cmd.name) {
    case 'run': return shellDependant('RUN', runFlags(cmd), cmd);
    case 'cmd': return shellDependant('CMD', [], cmd);
    case 'entrypoint': return shellDependant('ENTRYPOINT', [], cmd);
    case 'copy':
    case 'add': return copyText(cmd);
    case 'env': return `ENV ${pairs(cmd.env)}`;
    case 'label': return `LABEL ${pairs(cmd.labels)}`;
    case 'arg': return `ARG ${cmd.args.map((a) => (a.value === undefined ? a.key : `${a.key}=${a.value}`)).join(' ')}`;
    case 'workdir': return `WORKDIR ${cmd.path}`;
    case 'user': return `USER ${cmd.user}`;
    case 'expose': return `EXPOSE ${cmd.ports.join(' ')}`;
    case 'volume': return `VOLUME ${execForm(cmd.volumes)}`;
    case 'stopsignal': return `STOPSIGNAL ${cmd.signal}`;
    case 'shell': return `SHELL ${execForm(cmd.shell)}`;
    case 'healthcheck': return healthcheckText(cmd);
    case 'onbuild': return `ONBUILD ${cmd.expression}`;
    case 'maintainer': return `MAINTAINER ${cmd.maintainer}`;
    default: {
      const never: never = cmd;
      throw new Error(`unknown instruction ${(never as Command).name}`);
    }
  }
}
