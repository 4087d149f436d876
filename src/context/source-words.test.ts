import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { GlobSyntaxError, cleanPath, compileGoMatch, containsWildcards, splitWildcards } from './source-words.js';

// Go's path/filepath match_test table (Unix), as [pattern, name, match | 'bad']
const MATCH: Array<[string, string, boolean | 'bad']> = [
  ['abc', 'abc', true],
  ['*', 'abc', true],
  ['*c', 'abc', true],
  ['a*', 'a', true],
  ['a*', 'abc', true],
  ['a*', 'ab/c', false],
  ['a*/b', 'abc/b', true],
  ['a*/b', 'a/c/b', false],
  ['a*b*c*d*e*/f', 'axbxcxdxe/f', true],
  ['a*b*c*d*e*/f', 'axbxcxdxexxx/f', true],
  ['a*b*c*d*e*/f', 'axbxcxdxe/xxx/f', false],
  ['a*b*c*d*e*/f', 'axbxcxdxexxx/fff', false],
  ['a*b?c*x', 'abxbbxdbxebxczzx', true],
  ['a*b?c*x', 'abxbbxdbxebxczzy', false],
  ['ab[c]', 'abc', true],
  ['ab[b-d]', 'abc', true],
  ['ab[e-g]', 'abc', false],
  ['ab[^c]', 'abc', false],
  ['ab[^b-d]', 'abc', false],
  ['ab[^e-g]', 'abc', true],
  ['a\\*b', 'a*b', true],
  ['a\\*b', 'ab', false],
  ['a?b', 'a☺b', true],
  ['a[^a]b', 'a☺b', true],
  ['a???b', 'a☺b', false],
  ['a[^a][^a][^a]b', 'a☺b', false],
  ['[a-ζ]*', 'α', true],
  ['*[a-ζ]', 'A', false],
  ['a?b', 'a/b', false],
  ['a*b', 'a/b', false],
  ['[\\]a]', ']', true],
  ['[\\-]', '-', true],
  ['[x\\-]', 'x', true],
  ['[x\\-]', '-', true],
  ['[x\\-]', 'z', false],
  ['[\\-x]', 'x', true],
  ['[\\-x]', '-', true],
  ['[\\-x]', 'a', false],
  ['[]a]', ']', 'bad'],
  ['[-]', '-', 'bad'],
  ['[x-]', 'x', 'bad'],
  ['[-x]', 'x', 'bad'],
  ['\\', 'a', 'bad'],
  ['[a-b-c]', 'a', 'bad'],
  ['[', 'a', 'bad'],
  ['[^', 'a', 'bad'],
  ['[^bc', 'a', 'bad'],
  ['a[', 'a', 'bad'],
  ['a[', 'ab', 'bad'],
  ['a[', 'x', 'bad'],
  ['a/b[', 'x', 'bad'],
  ['*x', 'xxx', true],
  ['[[]xyz]', '[xyz]', true],
];

describe('compileGoMatch (Go filepath.Match, one implementation with .dockerignore)', () => {
  for (const [pattern, name, want] of MATCH) {
    test(`${pattern} ~ ${name}`, () => {
      if (want === 'bad') {
        assert.throws(() => compileGoMatch(pattern), GlobSyntaxError);
      } else {
        assert.equal(compileGoMatch(pattern).match(name), want);
      }
    });
  }
  test('maxDepth bounds the components a match can have', () => {
    assert.equal(compileGoMatch('*').maxDepth, 1);
    assert.equal(compileGoMatch('*/b/*.txt').maxDepth, 3);
  });
});

describe('paths', () => {
  test('cleanPath is Go path.Clean', () => {
    const cases: Array<[string, string]> = [
      ['', '.'], ['a/../..', '..'], ['/../a', '/a'], ['a//b/./c/', 'a/b/c'], ['/', '/'], ['./', '.'], ['a/b/../../c', 'c'],
    ];
    for (const [input, want] of cases) assert.equal(cleanPath(input), want, input);
  });
  test('containsWildcards skips escaped characters', () => {
    assert.equal(containsWildcards('a/b*'), true);
    assert.equal(containsWildcards('a\\*b'), false);
    assert.equal(containsWildcards('x[1]'), true);
    assert.equal(containsWildcards('plain/path'), false);
  });
  test('splitWildcards splits at the first wildcard component', () => {
    assert.deepEqual(splitWildcards('/a/b*/c'), { dir: '/a', pattern: 'b*/c' });
    assert.deepEqual(splitWildcards('/*.txt'), { dir: '/', pattern: '*.txt' });
    assert.deepEqual(splitWildcards('/a/b/'), { dir: '/a/b', pattern: '' });
  });
});
