import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Command } from 'commander';
import { registerBuild } from './commands/build.js';
import { handoffCarriesNetwork, parseLeanBuild } from './lean.js';

/** What commander gives the real `build` command for these words (the action is stopped before it runs). */
function commanderParse(args: string[]): { context: string; o: Record<string, unknown> } {
  const program = new Command().exitOverride().configureOutput({ writeErr: () => undefined, writeOut: () => undefined });
  registerBuild(program, { getState: () => Promise.reject(new Error('not in this test')) });
  let got: { context: string; o: Record<string, unknown> } | undefined;
  program.hook('preAction', (_p, cmd) => {
    got = { context: cmd.args[0]!, o: cmd.opts() };
    throw new Error('parsed');
  });
  try {
    program.parse(['build', ...args], { from: 'user' });
  } catch (err) {
    if ((err as Error).message !== 'parsed') throw err;
  }
  return got!;
}

test('the lean entry parses the build flags it takes exactly as the full CLI (commander) does', () => {
  const lines = [
    ['ctx'],
    ['-t', 'a:1', '--tag', 'b', '--tag=c', 'ctx'],
    ['--progress=plain', '--metadata-file', '/tmp/m.json', '--network=host', '--build-arg', 'A=1', '--build-arg=B', 'ctx'],
    ['ctx', '--secret', 'id=x,src=/etc/hostname', '--no-cache', '-q', '--explain', '--target', 'stage', '-f', 'ctx/Other'],
    ['--no-cache-filter', 'a', '--no-cache-filter=b', '--progress', 'json', 'ctx'],
  ];
  for (const args of lines) {
    const lean = parseLeanBuild(args);
    assert.ok(lean, args.join(' '));
    const full = commanderParse(args);
    assert.equal(lean.context, full.context);
    for (const [k, v] of Object.entries(lean.o)) assert.deepEqual(v, full.o[k], `${args.join(' ')}: ${k}`);
    for (const k of ['tag', 'buildArg', 'secret', 'cacheFilter', 'file', 'target', 'network', 'progress', 'metadataFile', 'quiet', 'explain']) {
      assert.deepEqual(lean.o[k], full.o[k], `${args.join(' ')}: ${k}`);
    }
    assert.equal(lean.o.cache === false, full.o.cache === false);
  }
});

test('the lean entry leaves every other build command line to the full CLI', () => {
  for (const args of [
    [], ['a', 'b'], ['--label', 'x=1', 'ctx'], ['--no-daemon', 'ctx'], ['-h'], ['--help'], ['--progress=fancy', 'ctx'], ['--network', 'bogus', 'ctx'],
    ['-t'], ['-t', '--quiet', 'ctx'], ['-qt', 'x', 'ctx'], ['--', 'ctx'], ['--output', 'type=oci,dest=x', 'ctx'], ['--verify', 'ctx'], ['-tx', 'ctx'],
  ]) {
    assert.equal(parseLeanBuild(args), undefined, args.join(' '));
  }
});

test('the lean entry hands off every network mode (the local server builds as in-process: host is the default)', () => {
  for (const [net, carried] of [[undefined, true], ['none', true], ['default', true], ['host', true], ['isolated', true]] as const) {
    const parsed = parseLeanBuild([...(net ? [`--network=${net}`] : []), 'ctx']);
    assert.ok(parsed, String(net));
    assert.equal(handoffCarriesNetwork(parsed.o), carried, String(net));
  }
});
