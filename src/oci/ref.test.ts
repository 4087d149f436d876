import { test } from 'node:test';
import assert from 'node:assert/strict';
import { familiarRepository, formatFamiliarRef, formatFullRef, localImageName, normalizeImageName, parseImageRef } from './ref.js';

const D = `sha256:${'a'.repeat(64)}`;

test('names are normalized the way Docker does', () => {
  const cases: Array<[string, string, string]> = [
    ['busybox', 'docker.io/library/busybox:latest', 'busybox:latest'],
    ['busybox:1.36', 'docker.io/library/busybox:1.36', 'busybox:1.36'],
    ['user/app:v2', 'docker.io/user/app:v2', 'user/app:v2'],
    ['index.docker.io/library/alpine:3', 'docker.io/library/alpine:3', 'alpine:3'],
    ['docker.io/library/a/b:1', 'docker.io/library/a/b:1', 'library/a/b:1'],
    ['example.com/team/app', 'example.com/team/app:latest', 'example.com/team/app:latest'],
    ['localhost/app:dev', 'localhost/app:dev', 'localhost/app:dev'],
    ['localhost:5000/a/b:c', 'localhost:5000/a/b:c', 'localhost:5000/a/b:c'],
    [`app@${D}`, `docker.io/library/app@${D}`, `app@${D}`],
    [`app:1@${D}`, `docker.io/library/app:1@${D}`, `app:1@${D}`],
    ['a__b-c---d/f_g.h', 'docker.io/a__b-c---d/f_g.h:latest', 'a__b-c---d/f_g.h:latest'],
  ];
  for (const [input, full, familiar] of cases) {
    const ref = normalizeImageName(input);
    assert.equal(formatFullRef(ref), full, input);
    assert.equal(formatFamiliarRef(ref), familiar, input);
  }
  assert.equal(familiarRepository(parseImageRef('busybox:1')), 'busybox');
  assert.equal(parseImageRef('busybox').tag, undefined);
});

test('invalid names are refused with ERR_KILN_ARGUMENT', () => {
  for (const bad of ['', 'UPPER', 'a/B', 'app:', 'app:-x', 'app@sha256:abc', 'a//b', 'a/../b', 'bad host/x', ':tag', `x/${'a'.repeat(260)}`]) {
    assert.throws(() => parseImageRef(bad), (err: { code?: string; message: string }) => {
      assert.equal(err.code, 'ERR_KILN_ARGUMENT', bad);
      assert.match(err.message, /invalid image name/);
      return true;
    }, bad);
  }
  assert.throws(() => parseImageRef('Busybox'), /lowercase/);
});

test('the stored local name: short form, latest added, digests kept, unparsable names returned as given', () => {
  assert.equal(localImageName('busybox'), 'busybox:latest');
  assert.equal(localImageName(' docker.io/library/busybox:1 '), 'busybox:1');
  assert.equal(localImageName('registry-1.docker.io/user/app'), 'user/app:latest');
  assert.equal(localImageName(`app@${D}`), `app@${D}`);
  assert.equal(localImageName('localhost:5000/a'), 'localhost:5000/a:latest');
  assert.equal(localImageName('Not Valid'), 'Not Valid');
  assert.deepEqual(parseImageRef('[::1]:5000/app:1'), { domain: '[::1]:5000', path: 'app', tag: '1' });
});
