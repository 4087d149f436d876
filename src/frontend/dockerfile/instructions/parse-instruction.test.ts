import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DockerfileError } from '../../../errors/index.js';
import { parse } from '../parser/index.js';
import { parseCommand, parseDockerfile, parseGoDuration, parseInstruction } from './index.js';
import type { Instruction } from './index.js';

function first(text: string): Instruction {
  return parseInstruction(parse(text).ast.children[0]);
}

/** Assert the instruction kind and narrow to it. */
function as<N extends Instruction['name']>(ins: Instruction, name: N): Instruction & { name: N } {
  assert.equal(ins.name, name);
  return ins as Instruction & { name: N };
}

function expectError(fn: () => unknown, message: string): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof DockerfileError, String(err));
    assert.equal(err.message, message);
    return true;
  });
}

function stage0(text: string) {
  return parseDockerfile(`FROM scratch\n${text}`).stages[0].commands[0];
}

test('errors name the file and the instruction line', () => {
  expectError(() => parseDockerfile('FROM a\n\nCOPY x\n', { file: 'web/Dockerfile' }),
    'web/Dockerfile:3: COPY requires at least two arguments, but only one was provided. Destination could not be determined');
  expectError(() => parseDockerfile('RUN x\n'), 'Dockerfile:1: no build stage in current context');
  assert.throws(() => parseDockerfile('FROM a\nFOO x\n'), (err: unknown) =>
    err instanceof DockerfileError && err.code === 'ERR_KILN_DOCKERFILE_INSTRUCTION' && err.location?.line === 2);
});

test('unknown instructions and flags get a suggestion', () => {
  expectError(() => first('FORM alpine\n'), 'Dockerfile:1: unknown instruction: FORM (did you mean FROM?)');
  expectError(() => first('cpy a b\n'), 'Dockerfile:1: unknown instruction: cpy (did you mean copy?)');
  expectError(() => first('XYZZY a\n'), 'Dockerfile:1: unknown instruction: XYZZY');
  expectError(() => first('COPY --form=a x y\n'), 'Dockerfile:1: unknown flag: --form (did you mean from?)');
});

test('flag value rules', () => {
  expectError(() => first('COPY --link=maybe a b\n'), 'Dockerfile:1: expecting boolean value for flag --link, not: maybe');
  expectError(() => first('COPY --link= a b\n'), 'Dockerfile:1: missing a value on flag: --link');
  expectError(() => first('COPY --from a b\n'), 'Dockerfile:1: missing a value on flag: --from');
  expectError(() => first('COPY --from=a --from=b a b\n'), 'Dockerfile:1: duplicate flag specified: --from');
  const copy = as(first('COPY --link=FALSE --exclude=*.md --exclude=x --parents a b /c/\n'), 'copy');
  assert.equal(copy.link, false);
  assert.equal(copy.parents, true);
  assert.deepEqual(copy.excludes, ['*.md', 'x']);
  assert.deepEqual(copy.sources, ['a', 'b']);
  assert.equal(copy.dest, '/c/');
});

test('ADD flags', () => {
  const add = as(first('ADD --keep-git-dir --unpack=false --checksum=sha256:abc --chmod=755 https://x/y.tar /z\n'), 'add');
  assert.equal(add.keepGitDir, true);
  assert.equal(add.unpack, false);
  assert.equal(add.checksum, 'sha256:abc');
  assert.equal(add.chmod, '755');
  const plain = as(first('ADD a b\n'), 'add');
  assert.deepEqual([plain.keepGitDir, plain.unpack], [undefined, undefined]);
  expectError(() => first('ADD --from=x a b\n'), 'Dockerfile:1: unknown flag: --from');
});

test('FROM stages', () => {
  const df = parseDockerfile('ARG BASE=alpine\nFROM --platform=$BUILDPLATFORM ${BASE} AS Build\nRUN x\nFROM build\n');
  assert.equal(df.metaArgs[0].args[0].value, 'alpine');
  assert.equal(df.stages.length, 2);
  assert.deepEqual([df.stages[0].name, df.stages[0].from.image, df.stages[0].from.platform], ['build', '${BASE}', '$BUILDPLATFORM']);
  assert.deepEqual([df.stages[1].index, df.stages[1].name, df.stages[1].from.image], [1, '', 'build']);
  assert.equal(df.stages[0].commands[0].name, 'run');
  expectError(() => first('FROM a b\n'), 'Dockerfile:1: FROM requires either one or three arguments');
  expectError(() => first('FROM a AS 1x\n'),
    'Dockerfile:1: invalid name for build stage: "1x", name can\'t start with a number or contain symbols');
  expectError(() => first('FROM\n'), 'Dockerfile:1: FROM requires either one or three arguments');
});

test('HEALTHCHECK options', () => {
  const hc = as(first('HEALTHCHECK --interval=1m30s --timeout=1.5s --start-period=0s --retries=3 CMD curl -f http://x/\n'), 'healthcheck');
  assert.deepEqual(hc.test, ['CMD-SHELL', 'curl -f http://x/']);
  assert.deepEqual([hc.interval, hc.timeout, hc.startPeriod, hc.retries], [90e9, 1.5e9, 0, 3]);
  const json = as(first('HEALTHCHECK CMD ["curl", "-f"]\n'), 'healthcheck');
  assert.deepEqual(json.test, ['CMD', 'curl', '-f']);
  const none = as(first('HEALTHCHECK --bogus NONE\n'), 'healthcheck');
  assert.deepEqual(none.test, ['NONE']);
  expectError(() => first('HEALTHCHECK NONE x\n'), 'Dockerfile:1: HEALTHCHECK NONE takes no arguments');
  expectError(() => first('HEALTHCHECK CONNECT x\n'), 'Dockerfile:1: Unknown type "CONNECT" in HEALTHCHECK (try CMD)');
  expectError(() => first('HEALTHCHECK CMD\n'), 'Dockerfile:1: Missing command after HEALTHCHECK CMD');
  expectError(() => first('HEALTHCHECK --retries=-1 CMD x\n'), 'Dockerfile:1: --retries cannot be negative (-1)');
  expectError(() => first('HEALTHCHECK --retries=x CMD x\n'), 'Dockerfile:1: strconv.ParseInt: parsing "x": invalid syntax');
  expectError(() => first('HEALTHCHECK --timeout=5 CMD x\n'), 'Dockerfile:1: time: missing unit in duration "5"');
  expectError(() => first('HEALTHCHECK --timeout=5d CMD x\n'), 'Dockerfile:1: time: unknown unit "d" in duration "5d"');
  expectError(() => first('HEALTHCHECK --timeout=50us CMD x\n'), 'Dockerfile:1: Interval "timeout" cannot be less than 1ms');
});

test('Go durations', () => {
  const table: Array<[string, number]> = [
    ['0', 0], ['1ns', 1], ['1.5h', 5.4e12], ['2h45m', 9.9e12], ['-1.5us', -1500], ['.5s', 5e8], ['1µs', 1000],
    ['300ms', 3e8], ['1h1m1s1ms1us1ns', 3661001001001],
  ];
  for (const [s, ns] of table) assert.equal(parseGoDuration(s), ns, s);
  for (const bad of ['', '.', '-', 's', '1.s.', '9223372036854775808ns']) {
    assert.throws(() => parseGoDuration(bad), /time: (invalid duration|missing unit)/, bad);
  }
});

test('RUN flags', () => {
  const run = as(stage0('RUN --mount=type=cache,target=/c --network=none --device=nvidia.com/gpu=all echo hi\n'), 'run');
  assert.deepEqual(run.mounts, ['type=cache,target=/c']);
  assert.equal(run.network, 'none');
  assert.equal(run.security, 'sandbox');
  assert.deepEqual(run.devices, ['nvidia.com/gpu=all']);
  assert.deepEqual(run.flagsUsed, ['mount', 'network', 'device']);
  assert.deepEqual([run.cmdLine, run.prependShell], [['echo hi'], true]);
  expectError(() => first('RUN --network=bridge x\n'), 'Dockerfile:1: invalid network mode "bridge"');
  expectError(() => first('RUN --security=x x\n'), 'Dockerfile:1: security "x" is not valid');
  expectError(() => first('RUN --mount=type=bind,from=$X x\n'),
    "Dockerfile:1: 'from' doesn't support variable expansion, define alias stage instead");
  expectError(() => first('RUN --mout=x y\n'), 'Dockerfile:1: unknown flag: --mout (did you mean mount?)');
});

test('single-argument and list instructions', () => {
  expectError(() => first('USER\n'), 'Dockerfile:1: USER requires exactly one argument');
  const expose = as(first('EXPOSE 8080 443/tcp 80\n'), 'expose');
  assert.deepEqual(expose.ports, ['443/tcp', '80', '8080']);
  const vol = as(first('VOLUME ["/a", "/b"]\n'), 'volume');
  assert.deepEqual(vol.volumes, ['/a', '/b']);
  expectError(() => first('VOLUME [" "]\n'), 'Dockerfile:1: VOLUME specified can not be an empty string');
  expectError(() => first('SHELL /bin/sh -c\n'), 'Dockerfile:1: SHELL requires the arguments to be in JSON form');
  const shell = as(first('SHELL ["/bin/bash", "-c"]\n'), 'shell');
  assert.deepEqual(shell.shell, ['/bin/bash', '-c']);
  const sig = as(first('STOPSIGNAL SIGTERM\n'), 'stopsignal');
  assert.equal(sig.signal, 'SIGTERM');
});

test('ENV, LABEL and ARG keep words unexpanded', () => {
  const env = as(first('ENV A=$B C="d e"\n'), 'env');
  assert.deepEqual(env.env, [{ key: 'A', value: '$B' }, { key: 'C', value: '"d e"' }]);
  const old = as(first('ENV A b c\n'), 'env');
  assert.deepEqual(old.env, [{ key: 'A', value: 'b c', noDelim: true }]);
  const arg = as(first('ARG a b= c=d\n'), 'arg');
  {
    assert.deepEqual(arg.args.map((a) => [a.key, a.value]), [['a', undefined], ['b', ''], ['c', 'd']]);
  }
  expectError(() => first('ARG =x\n'), 'Dockerfile:1: ARG names can not be blank');
});

test('ONBUILD keeps its trigger text, heredocs included', () => {
  const ob = as(first('ONBUILD RUN <<EOF\necho hi\nEOF\n'), 'onbuild');
  assert.equal(ob.expression, 'RUN <<EOF\necho hi\nEOF');
  expectError(() => first('ONBUILD MAINTAINER me\n'), "Dockerfile:1: MAINTAINER isn't allowed as an ONBUILD trigger");
});

test('parseCommand refuses FROM', () => {
  expectError(() => parseCommand(parse('FROM a\n').ast.children[0]), 'Dockerfile:1: FROM is not a command type');
  assert.equal(parseCommand(parse('RUN a\n').ast.children[0]).name, 'run');
});

test('base fields: original, location, comments', () => {
  const run = parseDockerfile('FROM a\n# build it\nRUN make \\\n  all  \n').stages[0].commands[0];
  assert.equal(run.original, 'RUN make   all');
  assert.deepEqual(run.location, { startLine: 3, endLine: 4 });
  assert.deepEqual(run.comments, ['build it']);
});
