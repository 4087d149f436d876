/**
 * Conformance of the Dockerfile shell lexer against BuildKit's own test data (../shared/conformance/shell-lexer):
 * envVarTest (ProcessWord), wordsTest (ProcessWords) and the tables extracted from lex_test.go.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  createShellLexer,
  envLookupFrom,
  reverseShellPattern,
  shellPatternToRegexSource,
} from '../../src/frontend/dockerfile/shell/index.js';
import { isBuildError } from '../../src/errors/index.js';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const dataDir = path.resolve(repoRoot, '..', 'shared', 'conformance', 'shell-lexer');
const readData = (name: string): string => readFileSync(path.join(dataDir, name), 'utf8');

interface MatchCase {
  input: string;
  env: Record<string, string>;
  expected?: string;
  matched?: string[];
  unmatched?: string[];
  error?: boolean;
}
interface MandatoryCase {
  input: string;
  env: Record<string, string>;
  expected?: string;
  error_contains?: string;
}
interface Cases {
  process_word_with_matches: { cases: MatchCase[] };
  mandatory_vars: { cases: MandatoryCase[] };
  platform_example: { input: string; cases: { env: Record<string, string>; expected: string }[] };
  env_lookup: { cases: { env: string[]; key: string; value: string }[] };
  shell_pattern_to_regex: {
    to_regex: Record<string, string>;
    invalid: string[];
    reverse_pattern: Record<string, string>;
  };
}

const lexer = createShellLexer({ escapeToken: '\\' });
const envOf = (record: Record<string, string>) => envLookupFrom(new Map(Object.entries(record)));

function assertSyntaxError(fn: () => unknown, contains?: string): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(isBuildError(err), `expected a BuildError, got ${String(err)}`);
    assert.equal(err.code, 'ERR_KILN_DOCKERFILE_SYNTAX');
    if (contains !== undefined) assert.ok(err.message.includes(contains), `message ${JSON.stringify(err.message)}`);
    return true;
  });
}

describe('shell lexer: envVarTest (ProcessWord)', () => {
  const env = envLookupFrom(['PWD=/home', 'SHELL=bash', 'KOREAN=한국어', 'NULL=']);
  const lines = readData('envVarTest').split('\n');
  let count = 0;
  lines.forEach((rawLine, idx) => {
    if (rawLine.startsWith('#')) return;
    const line = rawLine.trim();
    if (line === '') return;
    const fields = line.split('|');
    assert.equal(fields.length, 3, `line ${idx + 1} must have 3 fields`);
    const [platform, input, expected] = fields.map((f) => f.trim());
    assert.ok(['A', 'U', 'W'].includes(platform), `line ${idx + 1}: bad platform ${platform}`);
    if (platform === 'W') return;
    count++;
    it(`line ${idx + 1}: ${input} -> ${expected === '' ? '(empty)' : expected}`, () => {
      if (expected === 'error') assertSyntaxError(() => lexer.processWord(input, env));
      else assert.equal(lexer.processWord(input, env), expected);
    });
  });
  it('ran the A and U lines', () => assert.equal(count, 228));
});

describe('shell lexer: wordsTest (ProcessWords)', () => {
  const entries: string[] = [];
  readData('wordsTest').split('\n').forEach((line, idx) => {
    if (line === '' || line.startsWith('#')) return;
    if (line.startsWith('ENV ')) {
      entries.push(line.slice(3).replace(/^ +/, ''));
      return;
    }
    const fields = line.split('|');
    assert.equal(fields.length, 2, `line ${idx + 1} must have exactly one |`);
    const input = fields[0].trim();
    const expected = fields[1].replace(/^ +/, '').split(',');
    const env = envLookupFrom([...entries]);
    it(`line ${idx + 1}: ${input} -> ${JSON.stringify(expected)}`, () => {
      let result: string[];
      try {
        result = lexer.processWords(input, env);
      } catch (err) {
        assert.ok(isBuildError(err), `expected a BuildError, got ${String(err)}`);
        result = ['error'];
      }
      assert.deepEqual(result, expected);
    });
  });
});

describe('shell lexer: cases.json', () => {
  const cases = JSON.parse(readData('cases.json')) as Cases;

  describe('process_word_with_matches', () => {
    cases.process_word_with_matches.cases.forEach((c, i) => {
      it(`#${i}: ${c.input} with ${JSON.stringify(c.env)}`, () => {
        if (c.error) {
          assertSyntaxError(() => lexer.processWordWithMatches(c.input, envOf(c.env)));
          return;
        }
        const res = lexer.processWordWithMatches(c.input, envOf(c.env));
        assert.equal(res.result, c.expected);
        assert.deepEqual([...res.matched].sort(), [...(c.matched ?? [])].sort(), 'matched');
        assert.deepEqual([...res.unmatched].sort(), [...(c.unmatched ?? [])].sort(), 'unmatched');
      });
    });
  });

  describe('mandatory_vars', () => {
    cases.mandatory_vars.cases.forEach((c, i) => {
      it(`#${i}: ${c.input} with ${JSON.stringify(c.env)}`, () => {
        if (c.error_contains !== undefined) {
          assertSyntaxError(() => lexer.processWord(c.input, envOf(c.env)), c.error_contains);
        } else {
          assert.equal(lexer.processWord(c.input, envOf(c.env)), c.expected);
        }
      });
    });
  });

  describe('platform_example', () => {
    const { input } = cases.platform_example;
    cases.platform_example.cases.forEach((c, i) => {
      it(`#${i}: ${JSON.stringify(c.env)}`, () => {
        assert.equal(lexer.processWordWithMatches(input, envOf(c.env)).result, c.expected);
      });
    });
  });

  describe('env_lookup', () => {
    cases.env_lookup.cases.forEach((c, i) => {
      it(`#${i}: ${JSON.stringify(c.env)} [${c.key}]`, () => {
        const env = envLookupFrom(c.env);
        assert.equal(env(c.key) ?? '', c.value);
        // the value must also be what expansion produces
        assert.equal(lexer.processWord(`\${${c.key}}`, env), c.value);
      });
    });
  });

  describe('shell_pattern_to_regex', () => {
    const spec = cases.shell_pattern_to_regex;
    for (const [pattern, expected] of Object.entries(spec.to_regex)) {
      it(`to_regex ${pattern}`, () => {
        assert.equal(shellPatternToRegexSource(pattern, { greedy: true, anchored: true }), expected);
      });
    }
    for (const pattern of spec.invalid) {
      it(`invalid ${pattern}`, () => {
        assert.throws(() => shellPatternToRegexSource(pattern, { greedy: true, anchored: true }));
        // and through the lexer, with the pattern coming from a variable so it reaches the glob unchanged
        const env = envOf({ FOO: 'value', P: pattern });
        assertSyntaxError(() => lexer.processWord('${FOO#$P}', env), 'invalid pattern');
        assertSyntaxError(() => lexer.processWord('${FOO%%$P}', env), 'invalid pattern');
      });
    }
    for (const [pattern, expected] of Object.entries(spec.reverse_pattern)) {
      it(`reverse_pattern ${pattern}`, () => {
        assert.equal(reverseShellPattern(pattern), expected);
      });
    }
  });
});
