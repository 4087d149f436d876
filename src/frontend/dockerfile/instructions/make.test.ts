import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parse } from '../parser/index.js';
import {
  makeArg, makeCmd, makeCopy, makeEntrypoint, makeEnv, makeExpose, makeHealthcheck, makeLabel, makeRun, makeShell, makeStopSignal,
  makeUser, makeVolume, makeWorkdir, parseInstruction, quoteWord, renderCommand, type Command,
} from './index.js';

const at = { file: '/src/template.ts', startLine: 7, endLine: 7 };

const RECORDS: Command[] = [
  makeRun({ shell: 'echo "$HOME" \'x\' && ls', mounts: ['type=cache,target=/root/.cache,id=a b'], network: 'none', security: 'insecure', at }),
  makeRun({ exec: ['/bin/echo', 'a "b"', 'c\\d', 'ü\n'], devices: ['/dev/fuse'] }),
  makeRun({ heredoc: 'set -e\necho KILN_EOF\nKILN_EOF\necho "$X"' }),
  makeCopy({ sources: ['a b', 'c'], dest: '/d/', from: 'build', chown: '1:2', chmod: '0644', link: true, parents: true, excludes: ['*.md', 'x y'] }),
  makeCopy({ add: true, sources: ['https://example.com/x.tgz'], dest: '/x', checksum: 'sha256:' + 'a'.repeat(64) }),
  makeEnv({ env: [{ key: 'A', value: quoteWord('x = "y" \\ $Z', { expand: true }) }, { key: 'B', value: '1' }] }),
  makeLabel({ labels: [{ key: 'org.x', value: quoteWord('$not expanded', { expand: false }) }] }),
  makeArg({ args: [{ key: 'V', value: '1' }, { key: 'W' }] }),
  makeWorkdir({ path: '/srv/my app' }),
  makeUser({ user: '1000:1000' }),
  makeCmd({ exec: ['python3', '-c', 'print("hi")'] }),
  makeCmd({ shell: 'python3 -m http.server' }),
  makeEntrypoint({ exec: ['/entry', '--flag=a b'] }),
  makeEntrypoint({ shell: 'exec /entry "$@"' }),
  makeExpose({ ports: ['8080/udp', '80'] }),
  makeVolume({ volumes: ['/data', '/my vol'] }),
  makeStopSignal({ signal: 'SIGTERM' }),
  makeShell({ shell: ['/bin/bash', '-o', 'pipefail', '-c'] }),
  makeHealthcheck({ shell: 'curl -f http://localhost/ || exit 1', interval: 5_000_000_000, timeout: 1_500_000_000, startPeriod: 2_000_000, startInterval: 1_000_000_000, retries: 3 }),
  makeHealthcheck({ exec: ['/bin/check', 'a b'] }),
  makeHealthcheck({}),
];

test('each constructor makes the record the parser reads from its rendered text', () => {
  for (const cmd of RECORDS) {
    const text = renderCommand(cmd);
    const nodes = parse(text, { file: 'Dockerfile' }).ast.children;
    assert.equal(nodes.length, 1, text);
    const { location: _a, ...parsed } = parseInstruction(nodes[0]!) as Command;
    const { location: _b, ...made } = cmd;
    assert.deepEqual(parsed, made, text);
  }
});

test("a record keeps the place it was made at, and its original is its text's first line", () => {
  assert.deepEqual(RECORDS[0]!.location, at);
  assert.equal(RECORDS[2]!.original, "RUN <<'KILN_EOF_'");
  assert.equal(RECORDS[8]!.original, 'WORKDIR /srv/my app');
  assert.throws(() => makeRun({ shell: 'a', exec: ['b'] }), /exactly one/);
});
