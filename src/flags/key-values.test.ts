import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseAssignments, parseKeyValues } from './key-values.js';

test('key=value lists: keys trimmed, values kept, a part without = refused with the given code', () => {
  assert.deepEqual(parseKeyValues('type=oci, dest=a=b.tar', '--output'), { type: 'oci', dest: 'a=b.tar' });
  assert.deepEqual(parseKeyValues('id=x,src=', '--secret'), { id: 'x', src: '' });
  assert.throws(() => parseKeyValues('type=oci,dest', '--output'), { code: 'ERR_KILN_ARGUMENT', message: '--output: expected key=value in "type=oci,dest"' });
  assert.throws(() => parseKeyValues('local', '--cache-from', 'ERR_KILN_CACHE_SOURCE'), { code: 'ERR_KILN_CACHE_SOURCE' });
});

test('assignments: KEY=VALUE sets, a bare KEY reads the environment and is dropped when unset', () => {
  assert.deepEqual(parseAssignments(['A=1', 'B=x=y', 'HOME', 'UNSET', 'E='], { HOME: '/root' }), { A: '1', B: 'x=y', HOME: '/root', E: '' });
  assert.deepEqual(parseAssignments([], {}), {});
});
