/**
 * BuildKit parser conformance: ../shared/conformance/dockerfile-parser (see its README).
 */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { DockerfileError } from '../../src/errors/index.js';
import {
  chompHeredocContent, detectSyntax, dump, findDirective, heredocsFromLine, parse, parseDirectives,
  parseHeredocWord, parseJsonArray, parseWords,
} from '../../src/frontend/dockerfile/parser/index.js';
import type { Node } from '../../src/frontend/dockerfile/parser/index.js';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const dataDir = path.resolve(repoRoot, '..', 'shared', 'conformance', 'dockerfile-parser');
const read = (...p: string[]): string => readFileSync(path.join(dataDir, ...p), 'utf8');
const readJson = <T>(...p: string[]): T => JSON.parse(read(...p)) as T;

function args(node: Node): string[] {
  const out: string[] = [];
  for (let n = node.next; n; n = n.next) out.push(n.value);
  return out;
}

describe('positive corpus: dump(ast) + "\\n" equals result', () => {
  const cases = readdirSync(path.join(dataDir, 'positive')).sort();
  test('corpus has 33 cases', () => assert.equal(cases.length, 33));
  for (const name of cases) {
    test(name, () => {
      const result = parse(read('positive', name, 'Dockerfile'));
      assert.equal(dump(result.ast) + '\n', read('positive', name, 'result'));
    });
  }
});

describe('negative corpus: parsing fails', () => {
  const cases = readdirSync(path.join(dataDir, 'negative')).sort();
  test('corpus has 4 cases', () => assert.equal(cases.length, 4));
  for (const name of cases) {
    test(name, () => {
      const file = `negative/${name}/Dockerfile`;
      assert.throws(() => parse(read('negative', name, 'Dockerfile'), { file }), (err: unknown) => {
        assert.ok(err instanceof DockerfileError);
        // the error names the file, the line and the problem: `FILE:LINE: problem`
        assert.match(err.message, new RegExp(`^${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:\\d+: \\S`));
        return true;
      });
    });
  }
});

interface HeredocExpect { name: string; content: string; expand: boolean; chomp: boolean; file_descriptor: number }
interface HeredocData {
  cases: Array<{ child_index: number; instruction_line: string; heredocs: HeredocExpect[] }>;
  json_form_never_has_heredocs: { dockerfile: string };
  chomp_helper: { input: string; output: string };
  parse_heredoc_word: { valid_name_EOF: string[]; error: string[]; not_heredoc: string[] };
  heredocs_from_line: { cases: Array<{ line: string; names: string[] }> };
}

describe('heredocs', () => {
  const data = readJson<HeredocData>('heredoc', 'expected.json');
  const ast = parse(read('heredoc', 'Dockerfile')).ast;
  test('28 instructions', () => assert.equal(ast.children.length, 28));
  test('27 checks in the table', () => assert.equal(data.cases.length, 27));
  for (const c of data.cases) {
    test(`child ${c.child_index}: ${c.instruction_line}`, () => {
      const child = ast.children[c.child_index];
      assert.equal(child.original, c.instruction_line);
      const got = child.heredocs.map((h) => ({
        name: h.name, content: h.content, expand: h.expand, chomp: h.chomp, file_descriptor: h.fileDescriptor,
      }));
      assert.deepEqual(got, c.heredocs);
    });
  }
  test('JSON form never takes heredocs', () => {
    const children = parse(data.json_form_never_has_heredocs.dockerfile).ast.children;
    assert.equal(children.length, 4);
    for (const child of children.slice(1)) {
      assert.equal(child.attributes?.json, true);
      assert.deepEqual(child.heredocs, []);
    }
  });
  test('chomp removes leading tabs', () => {
    assert.equal(chompHeredocContent(data.chomp_helper.input), data.chomp_helper.output);
  });
  for (const word of data.parse_heredoc_word.valid_name_EOF) {
    test(`heredoc word ${JSON.stringify(word)} names EOF`, () => assert.equal(parseHeredocWord(word)?.name, 'EOF'));
  }
  for (const word of data.parse_heredoc_word.error) {
    test(`heredoc word ${JSON.stringify(word)} is an error`, () => assert.throws(() => parseHeredocWord(word)));
  }
  for (const word of data.parse_heredoc_word.not_heredoc) {
    test(`word ${JSON.stringify(word)} is not a heredoc`, () => assert.equal(parseHeredocWord(word), undefined));
  }
  // Upstream's TestHeredocsFromLine asserts only on the heredocs it gets back (each must carry the listed
  // name at its position), so this table is checked the same way. BuildKit's lexer keeps `<<-` and `EOF`
  // as two words in `RUN <<- EOF`, so that line yields no heredoc there either.
  for (const c of data.heredocs_from_line.cases) {
    test(`heredocs on line ${JSON.stringify(c.line)}`, () => {
      const names = heredocsFromLine(c.line).map((h) => h.name);
      assert.ok(names.length <= c.names.length, `unexpected heredocs ${JSON.stringify(names)}`);
      assert.deepEqual(names, c.names.slice(0, names.length));
    });
  }
});

describe('line numbers', () => {
  const expected = readJson<{
    root: { start_line: number; end_line: number };
    children: Array<{ start_line: number; end_line: number }>;
  }>('line-numbers', 'expected.json');
  const result = parse(read('line-numbers', 'Dockerfile'));
  test('root lines', () => {
    assert.deepEqual([result.ast.startLine, result.ast.endLine], [expected.root.start_line, expected.root.end_line]);
  });
  expected.children.forEach((want, i) => {
    test(`child ${i} lines`, () => {
      const child = result.ast.children[i];
      assert.deepEqual([child.startLine, child.endLine], [want.start_line, want.end_line]);
    });
  });
  test('child count', () => assert.equal(result.ast.children.length, expected.children.length));
  test('the ESCAPE directive is recognised case-insensitively', () => {
    assert.deepEqual(result.directives.all.map((d) => [d.name, d.value, d.line]), [['escape', '\\', 1]]);
  });
});

interface Extra {
  empty_continuation: {
    dockerfile: string; warning_count: number; warnings_contain: string[][]; first_warning_detail_contains: string;
  };
  line_too_long: { dockerfile_template: string; expect_error: string };
  parse_words: { cases: Array<{ input: string; expect: string[] }> };
  name_val: { cases: Array<{ input: string; instruction: string; nodes?: string[]; error?: string }> };
  json_arrays: { valid: Array<{ input: string; expect: string[] }>; not_string_array_error: string[] };
  directives: {
    parse_all: Array<{ input: string; directives: Array<{ name: string; value: string }> }>;
    detect_syntax: Array<{
      input: string; input_hex_prefix?: string; found: boolean; ref?: string; cmdline?: string; line?: number;
    }>;
    parse_directive_check: Array<{ input: string; found: boolean; value?: string; cmdline?: string; line?: number }>;
  };
}

describe('extra cases', () => {
  const extra = readJson<Extra>('extra-cases.json');

  describe('empty continuation warning', () => {
    const ec = extra.empty_continuation;
    const result = parse(read('warnings', ec.dockerfile));
    test('warning count', () => assert.equal(result.warnings.length, ec.warning_count));
    ec.warnings_contain.forEach((parts, i) => {
      test(`warning ${i} text`, () => {
        for (const p of parts) assert.ok(result.warnings[i].short.includes(p), `${result.warnings[i].short} has ${p}`);
      });
    });
    test('first warning detail', () => {
      assert.ok(result.warnings[0].detail?.some((d) => d.includes(ec.first_warning_detail_contains)));
    });
  });

  test('line too long', () => {
    const text = extra.line_too_long.dockerfile_template.replace('%s', 'a'.repeat(65536));
    assert.throws(() => parse(text), (err: unknown) => {
      assert.ok(err instanceof DockerfileError);
      assert.ok(err.message.includes(extra.line_too_long.expect_error), err.message);
      return true;
    });
  });

  describe('word splitting', () => {
    for (const c of extra.parse_words.cases) {
      test(JSON.stringify(c.input), () => assert.deepEqual(parseWords(c.input, '\\'), c.expect));
    }
  });

  describe('ENV/LABEL name-value nodes', () => {
    for (const c of extra.name_val.cases) {
      test(`${c.instruction} ${c.input}`, () => {
        const text = `${c.instruction} ${c.input}\n`;
        if (c.error !== undefined) {
          assert.throws(() => parse(text), (err: unknown) => {
            assert.ok(err instanceof DockerfileError);
            assert.ok(err.message.includes(c.error!), err.message);
            return true;
          });
        } else {
          assert.deepEqual(args(parse(text).ast.children[0]), c.nodes);
        }
      });
    }
  });

  describe('JSON arrays', () => {
    for (const c of extra.json_arrays.valid) {
      test(`valid ${JSON.stringify(c.input)}`, () => {
        assert.deepEqual(parseJsonArray(c.input), { ok: true, values: c.expect });
        const node = parse(`CMD ${c.input}\n`).ast.children[0];
        assert.equal(node.attributes?.json, true);
        assert.deepEqual(args(node), c.expect);
      });
    }
    for (const input of extra.json_arrays.not_string_array_error) {
      test(`non-string ${JSON.stringify(input)} is a hard error`, () => {
        assert.deepEqual(parseJsonArray(input), { ok: false, hard: true });
        assert.throws(() => parse(`RUN ${input}\n`), /arrays must be comprised of strings only/);
      });
    }
  });

  describe('directives', () => {
    const d = extra.directives;
    d.parse_all.forEach((c, i) => {
      test(`parse all #${i}`, () => {
        assert.deepEqual(parseDirectives(c.input).map((x) => ({ name: x.name, value: x.value })), c.directives);
      });
    });
    d.detect_syntax.forEach((c, i) => {
      test(`detect syntax #${i} ${JSON.stringify(c.input)}`, () => {
        const prefix = c.input_hex_prefix ? Buffer.from(c.input_hex_prefix, 'hex').toString('utf8') : '';
        const got = detectSyntax(prefix + c.input);
        assert.equal(got.found, c.found);
        if (c.ref !== undefined) assert.equal(got.value, c.ref);
        if (c.cmdline !== undefined) assert.equal(got.cmdline, c.cmdline);
        if (c.line !== undefined) assert.equal(got.line, c.line);
      });
    });
    d.parse_directive_check.forEach((c, i) => {
      test(`check directive #${i} ${JSON.stringify(c.input)}`, () => {
        const got = findDirective('check', c.input);
        assert.equal(got.found, c.found);
        if (c.value !== undefined) assert.equal(got.value, c.value);
        if (c.cmdline !== undefined) assert.equal(got.cmdline, c.cmdline);
        if (c.line !== undefined) assert.equal(got.line, c.line);
      });
    });
  });
});
