/** Every `kiln build` option is classified for remote builds and local hand-offs, so none is dropped silently. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Command } from 'commander';
import { registerBuild } from './build.js';
import { BUILD_FLAG_HANDLING, remoteCliBuild, usedBuildFlags } from './remote.js';
import type { CliContext } from '../shared.js';

function buildCommand(): Command {
  const program = new Command();
  const cli: CliContext = { getState: () => Promise.reject(new Error('not used')) };
  registerBuild(program, cli);
  return program.commands.find((c) => c.name() === 'build')!;
}

test('every option of the build command (the parser\'s own definition) has a remote and a hand-off handling', () => {
  const names = buildCommand().options.map((o) => o.attributeName());
  assert.ok(names.length > 30, `found only ${names.length} options`);
  const missing = names.filter((n) => !(n in BUILD_FLAG_HANDLING));
  assert.deepEqual(missing, [], `unclassified build options (add them to BUILD_FLAG_HANDLING in remote.ts): ${missing.join(', ')}`);
  const stale = Object.keys(BUILD_FLAG_HANDLING).filter((k) => !names.includes(k));
  assert.deepEqual(stale, [], `BUILD_FLAG_HANDLING names options the build command no longer has: ${stale.join(', ')}`);
});

test('the defaults of an empty command line count as unset; set flags are seen', () => {
  const cmd = buildCommand();
  cmd.parseOptions([]);
  assert.deepEqual(usedBuildFlags(cmd.opts()), []);
  const set = buildCommand();
  set.parseOptions(['--label', 'a=b', '--no-cache', '--iidfile', 'x', '--network', 'none']);
  assert.deepEqual(usedBuildFlags(set.opts()).sort(), ['cache', 'iidfile', 'label', 'network']);
});

test('a remote build refuses every set flag classified refused, by name, before contacting the service', async () => {
  for (const [k, h] of Object.entries(BUILD_FLAG_HANDLING)) {
    if (h.remote !== 'refused') continue;
    const cmd = buildCommand();
    const opt = cmd.options.find((o) => o.attributeName() === k)!;
    const argv = opt.negate ? [opt.long!] : opt.required || opt.optional ? [opt.long!, 'linux/arm64'] : [opt.long!];
    cmd.parseOptions(argv);
    await assert.rejects(remoteCliBuild('.', cmd.opts(), 'http://127.0.0.1:9'), (e: Error & { code?: string }) => {
      assert.equal(e.code, 'ERR_KILN_NOT_SUPPORTED', `${k}: ${e.message}`);
      assert.ok(e.message.includes(opt.long!), `${k}: ${e.message}`);
      return true;
    });
  }
  const host = buildCommand();
  host.parseOptions(['--network', 'host']);
  await assert.rejects(remoteCliBuild('.', host.opts(), 'http://127.0.0.1:9'), /--network cannot be used with a remote build/);
});
