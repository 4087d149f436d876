import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { isInvalidArgument } from '../../errors/index.js';
import { parseChmod } from './mode.js';

describe('parseChmod', () => {
  test('octal values are fixed modes, special bits included', () => {
    assert.equal(parseChmod('755').apply(0o600, false), 0o755);
    assert.equal(parseChmod('4755').apply(0o600, true), 0o4755);
    assert.equal(parseChmod('0644').octal, 0o644);
  });
  test('out-of-range or non-octal numbers are refused like BuildKit', () => {
    for (const bad of ['17777', '789']) {
      assert.throws(() => parseChmod(bad), (e: unknown) => isInvalidArgument(e) && /between 0 and 07777/.test((e as Error).message));
    }
    assert.throws(() => parseChmod('u+q'), isInvalidArgument);
    assert.throws(() => parseChmod('rwx'), isInvalidArgument);
  });
  test('symbolic: +x, u+x, g=u, go-w', () => {
    assert.equal(parseChmod('+x').apply(0o644, false), 0o755);
    assert.equal(parseChmod('u+x').apply(0o644, false), 0o744);
    assert.equal(parseChmod('g=u').apply(0o640, false), 0o660);
    assert.equal(parseChmod('go-w').apply(0o666, false), 0o644);
    assert.equal(parseChmod('a=r').apply(0o777, false), 0o444);
  });
  test("symbolic X: executable for directories and already-executable files (u=rwX,go=rX)", () => {
    const spec = parseChmod('u=rwX,go=rX');
    assert.equal(spec.apply(0o600, true), 0o755);
    assert.equal(spec.apply(0o600, false), 0o644);
    assert.equal(spec.apply(0o700, false), 0o755);
  });
  test('symbolic s and t', () => {
    assert.equal(parseChmod('u+s').apply(0o755, false), 0o4755);
    assert.equal(parseChmod('g+s').apply(0o755, true), 0o2755);
    assert.equal(parseChmod('+t').apply(0o777, true), 0o1777);
  });
});
