import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DockerfileError } from '../../../errors/index.js';
import { dump, parse, quoteGo } from './index.js';

function expectError(fn: () => unknown, message: string): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof DockerfileError, String(err));
    assert.equal(err.message, message);
    assert.equal(err.code, 'ERR_KILN_DOCKERFILE_SYNTAX');
    return true;
  });
}

test('errors name the file and the line', () => {
  expectError(() => parse('FROM a\n\nRUN ["a", 1]\n', { file: 'app.Dockerfile' }),
    'app.Dockerfile:3: when using JSON array syntax, arrays must be comprised of strings only');
  expectError(() => parse('FROM a\nENV PATH\n'), 'Dockerfile:2: ENV must have two arguments');
  expectError(() => parse('FROM a\nLABEL a=b c\n'),
    'Dockerfile:2: Syntax error - can\'t find = in "c". Must be of the form: name=value');
  expectError(() => parse(''), 'Dockerfile:1: file with no instructions');
  expectError(() => parse('# just a comment\n\n'), 'Dockerfile:2: file with no instructions');
});

test('directive errors', () => {
  expectError(() => parse('# escape=\\\n# escape=`\nFROM x\n'), 'Dockerfile:2: only one escape parser directive can be used');
  expectError(() => parse('# escape=x\nFROM x\n'), "Dockerfile:1: invalid escape token 'x' does not match ` or \\");
});

test('unterminated heredoc reports the instruction line', () => {
  expectError(() => parse('FROM a\nRUN <<EOF\necho hi\n'), 'Dockerfile:2: unterminated heredoc');
});

test('line length limit counts UTF-8 bytes and allows 65535 + newline', () => {
  assert.doesNotThrow(() => parse(`FROM a\nLABEL x=${'a'.repeat(65535 - 8)}\n`));
  expectError(() => parse(`FROM a\nLABEL x=${'a'.repeat(65536 - 8)}\n`),
    'Dockerfile:2: dockerfile line greater than max allowed size of 65535');
  expectError(() => parse(`FROM a\nLABEL x=${'é'.repeat(40000)}\n`),
    'Dockerfile:2: dockerfile line greater than max allowed size of 65535');
});

test('escape directive switches the continuation character', () => {
  const r = parse('# escape=`\nFROM a\nRUN echo \\\nRUN dir c:\\ `\n  more\n');
  assert.equal(r.escapeToken, '`');
  assert.equal(r.directives.escape, '`');
  assert.equal(dump(r.ast), '(from "a")\n(run "echo \\\\")\n(run "dir c:\\\\   more")');
});

test('a directive after a comment is an ordinary comment', () => {
  const r = parse('# hello\n# escape=`\nFROM a\nRUN x \\\n y\n');
  assert.equal(r.escapeToken, '\\');
  assert.deepEqual(r.directives.all, []);
  assert.deepEqual(r.ast.children[0].prevComment, ['hello', 'escape=`']);
  assert.equal(r.ast.children[1].next?.value, 'x  y');
});

test('syntax and check directives are reported', () => {
  const r = parse('# syntax=docker/dockerfile:1.7 // opts\n# check=skip=all\nFROM a\n');
  assert.equal(r.directives.syntax, 'docker/dockerfile:1.7');
  assert.equal(r.directives.check, 'skip=all');
  assert.deepEqual(r.directives.all.map((d) => [d.name, d.line]), [['syntax', 1], ['check', 2]]);
  assert.equal(r.ast.children[0].prevComment?.length, 0);
});

test('keyword case is kept beside the lower-cased value', () => {
  const r = parse('From a\nfoo bar baz\n');
  assert.equal(r.ast.children[0].value, 'from');
  assert.equal(r.ast.children[0].keyword, 'From');
  assert.equal(dump(r.ast.children[1]), 'foo ""');
});

test('CRLF line endings and a BOM', () => {
  const r = parse('\ufeffFROM a\r\nRUN echo hi \\\r\n  there\r\n');
  assert.equal(dump(r.ast), '(from "a")\n(run "echo hi   there")');
  assert.equal(r.ast.children[1].endLine, 3);
});

test('comments above an instruction are kept; "#" alone clears them', () => {
  const r = parse('# one\n# two\nFROM a\n# x\n#\n# three\nRUN b\n');
  assert.deepEqual(r.ast.children[0].prevComment, ['one', 'two']);
  assert.deepEqual(r.ast.children[1].prevComment, ['three']);
});

test('ONBUILD triggers take heredocs and line numbers', () => {
  const r = parse('FROM a\nONBUILD RUN <<EOF\necho hi\nEOF\n');
  const onbuild = r.ast.children[1];
  assert.equal(dump(onbuild), 'onbuild (run "<<EOF")');
  assert.equal(onbuild.heredocs[0].content, 'echo hi\n');
  assert.deepEqual([onbuild.startLine, onbuild.endLine], [2, 4]);
  assert.equal(onbuild.next?.children[0].startLine, 2);
});

test('heredoc bodies keep CRLF and count lines', () => {
  const r = parse('FROM a\nCOPY <<A <<B /d\r\na\r\nA\r\nb\nB\nRUN x\n');
  assert.deepEqual(r.ast.children[1].heredocs.map((h) => h.content), ['a\r\n', 'b\n']);
  assert.deepEqual([r.ast.children[2].startLine], [7]);
});

test('empty continuation warning carries the instruction lines', () => {
  const r = parse('FROM a\nRUN a \\\n\n  b\n');
  assert.equal(r.warnings.length, 1);
  assert.equal(r.warnings[0].short, 'Empty continuation line found in: RUN a   b');
  assert.deepEqual(r.warnings[0].location, { startLine: 2, endLine: 4 });
});

test('flags: quotes removed, escapes applied, -- ends them', () => {
  const r = parse('COPY --chown="a b" --x=c\\ d -- --not-a-flag /e\n');
  assert.deepEqual(r.ast.children[0].flags, ['--chown=a b', '--x=c d']);
  assert.equal(dump(r.ast), '(copy ["--chown=a b" "--x=c d"] "--not-a-flag" "/e")');
});

test('quoteGo follows strconv.Quote', () => {
  assert.equal(quoteGo('a"b\\c'), '"a\\"b\\\\c"');
  assert.equal(quoteGo('\x00\x07\x1b\x7f'), '"\\x00\\a\\x1b\\x7f"');
  assert.equal(quoteGo('♥ é 😀'), '"♥ é 😀"');
  assert.equal(quoteGo('\u00a0\u200b\u{e0001}'), '"\\u00a0\\u200b\\U000e0001"');
});

test('invalid JSON falls back to shell form', () => {
  const r = parse("CMD ['a']\nRUN [\"a\"\nVOLUME [\"/a\" \"/b\"]\n");
  assert.equal(dump(r.ast), '(cmd "[\'a\']")\n(run "[\\"a\\"")\n(volume "[\\"/a\\"" "\\"/b\\"]")');
  assert.equal(r.ast.children[0].attributes, undefined);
});
