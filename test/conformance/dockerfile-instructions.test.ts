/**
 * BuildKit instruction-level conformance: ../shared/conformance/dockerfile-instructions/cases.json.
 */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { DockerfileError } from '../../src/errors/index.js';
import { parse } from '../../src/frontend/dockerfile/parser/index.js';
import type { Node } from '../../src/frontend/dockerfile/parser/index.js';
import { parseDockerfile, parseInstruction } from '../../src/frontend/dockerfile/instructions/index.js';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const casesFile = path.resolve(repoRoot, '..', 'shared', 'conformance', 'dockerfile-instructions', 'cases.json');

interface Cases {
  error_cases: Array<{ name: string; dockerfile: string; expected_error: string }>;
  node_level_errors: { cases: Array<{ instruction: string; args: string[]; expected_error: string }> };
  healthcheck_cmd: { node_args: string[]; expected_test: string[] };
  healthcheck_interval: { cases: Array<{ value: string; error_contains?: string; ok?: boolean }> };
  run_flags_used: { dockerfile: string; flags_used: string[] };
  doc_comments: {
    dockerfile: string;
    expect: {
      stage0_doc: string; global_arg_foo_doc: string; stage_arg_foo_doc: string;
      stage_arg_bar_doc: string; stage_arg_baz_doc: string;
    };
  };
  copy_heredoc: {
    cases: Array<{
      dockerfile: string; dest: string; source_paths: string[];
      source_contents: Array<{ path: string; data: string; expand: boolean }>;
    }>;
  };
  run_heredoc: {
    cases: Array<{
      dockerfile: string; prepend_shell: boolean; cmdline: string[];
      files: Array<{ name: string; data: string; chomp: boolean }>;
    }>;
  };
}

const cases = JSON.parse(readFileSync(casesFile, 'utf8')) as Cases;

/** An instruction node built by hand, as upstream's node-level tests do. */
function handNode(keyword: string, args: string[]): Node {
  const mk = (value: string): Node => ({
    value, children: [], heredocs: [], original: '', flags: [], startLine: 0, endLine: 0,
  });
  const root = { ...mk(keyword.toLowerCase()), original: `${keyword} ${args.join(' ')}`, startLine: 1, endLine: 1 };
  let prev = root;
  for (const a of args) {
    const n = mk(a);
    prev.next = n;
    prev = n;
  }
  return root;
}

function firstInstruction(text: string) {
  return parseInstruction(parse(text).ast.children[0]);
}

function assertErrorContains(fn: () => unknown, expected: string): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof DockerfileError, `not a DockerfileError: ${String(err)}`);
    assert.ok(err.message.includes(expected), `"${err.message}" does not contain "${expected}"`);
    return true;
  });
}

describe('error cases', () => {
  test('table has 19 cases', () => assert.equal(cases.error_cases.length, 19));
  for (const c of cases.error_cases) {
    test(`${c.name}: ${JSON.stringify(c.dockerfile)}`, () => {
      const children = parse(c.dockerfile).ast.children;
      assertErrorContains(() => parseInstruction(children[0]), c.expected_error);
    });
  }
});

describe('node-level errors', () => {
  for (const c of cases.node_level_errors.cases) {
    test(`${c.instruction} ${JSON.stringify(c.args)}`, () => {
      assertErrorContains(() => parseInstruction(handNode(c.instruction, c.args)), c.expected_error);
    });
  }
});

/** Nanoseconds the accepted interval values must give. */
const INTERVAL_NS: Record<string, number> = { '0ms': 0, '1ms': 1_000_000 };

describe('healthcheck', () => {
  test('non-JSON CMD becomes CMD-SHELL', () => {
    const hc = parseInstruction(handNode('HEALTHCHECK', cases.healthcheck_cmd.node_args));
    assert.equal(hc.name, 'healthcheck');
    if (hc.name === 'healthcheck') assert.deepEqual(hc.test, cases.healthcheck_cmd.expected_test);
  });
  for (const c of cases.healthcheck_interval.cases) {
    test(`--interval=${c.value}`, () => {
      const text = `HEALTHCHECK --interval=${c.value} CMD true\n`;
      if (c.error_contains !== undefined) {
        assertErrorContains(() => firstInstruction(text), c.error_contains);
      } else {
        const hc = firstInstruction(text);
        assert.equal(hc.name, 'healthcheck');
        if (hc.name === 'healthcheck') assert.equal(hc.interval, INTERVAL_NS[c.value]);
      }
    });
  }
});

test('RUN flags used', () => {
  const run = firstInstruction(cases.run_flags_used.dockerfile);
  assert.equal(run.name, 'run');
  if (run.name === 'run') assert.deepEqual(run.flagsUsed, cases.run_flags_used.flags_used);
});

describe('doc comments', () => {
  const dc = cases.doc_comments;
  const df = parseDockerfile(dc.dockerfile);
  const stageArgs = df.stages[0].commands.filter((c) => c.name === 'arg').flatMap((c) => (c.name === 'arg' ? c.args : []));
  const docOf = (key: string) => stageArgs.find((a) => a.key === key)?.comment ?? '';
  test('stage doc', () => assert.equal(df.stages[0].comment ?? '', dc.expect.stage0_doc));
  test('global ARG foo doc', () => {
    assert.equal(df.metaArgs[0].args.find((a) => a.key === 'foo')?.comment ?? '', dc.expect.global_arg_foo_doc);
  });
  test('stage ARG foo doc', () => assert.equal(docOf('foo'), dc.expect.stage_arg_foo_doc));
  test('stage ARG bar doc', () => assert.equal(docOf('bar'), dc.expect.stage_arg_bar_doc));
  test('stage ARG baz doc', () => assert.equal(docOf('baz'), dc.expect.stage_arg_baz_doc));
});

describe('COPY heredocs', () => {
  for (const c of cases.copy_heredoc.cases) {
    test(JSON.stringify(c.dockerfile), () => {
      const copy = firstInstruction(c.dockerfile);
      assert.equal(copy.name, 'copy');
      if (copy.name !== 'copy') return;
      assert.equal(copy.dest, c.dest);
      assert.deepEqual(copy.sources, c.source_paths);
      assert.deepEqual(copy.sourceContents, c.source_contents);
    });
  }
});

describe('RUN heredocs', () => {
  for (const c of cases.run_heredoc.cases) {
    test(JSON.stringify(c.dockerfile), () => {
      const run = firstInstruction(c.dockerfile);
      assert.equal(run.name, 'run');
      if (run.name !== 'run') return;
      assert.equal(run.prependShell, c.prepend_shell);
      assert.deepEqual(run.cmdLine, c.cmdline);
      assert.deepEqual(run.files.map((f) => ({ name: f.name, data: f.content, chomp: f.chomp })), c.files);
    });
  }
});
