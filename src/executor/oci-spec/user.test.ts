import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isBuildError } from '../../errors/index.js';
import { parseGroup, parsePasswd, resolveUser } from './user.js';

const passwd = [
  'root:x:0:0:root:/root:/bin/sh',
  '# a comment',
  'broken line',
  'daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin',
  'app:x:1000:1000:App:/home/app:/bin/sh',
  'ci:x:1001:100::/home/ci:/bin/sh',
  '',
].join('\n');
const group = [
  'root:x:0:',
  'bin:x:1:root,daemon',
  'wheel:x:10:root',
  'users:x:100:',
  'app:x:1000:',
  'docker:x:998:app,ci',
  'sudo:x:27: app ',
  'bad:x:notanumber:app',
].join('\n');

test('parsers skip comments and malformed lines', () => {
  assert.deepEqual(parsePasswd(passwd).map((p) => p.name), ['root', 'daemon', 'app', 'ci']);
  assert.deepEqual(parseGroup(group).find((g) => g.name === 'sudo'), { name: 'sudo', gid: 27, members: ['app'] });
  assert.equal(parseGroup(group).some((g) => g.name === 'bad'), false);
});

test('default user is root, with the groups that list root', () => {
  assert.deepEqual(resolveUser({ passwd, group }), { uid: 0, gid: 0, additionalGids: [0, 1, 10] });
  assert.deepEqual(resolveUser({ user: '', passwd, group }), { uid: 0, gid: 0, additionalGids: [0, 1, 10] });
  assert.deepEqual(resolveUser({ user: 'root', passwd, group }), { uid: 0, gid: 0, additionalGids: [0, 1, 10] });
});

test('root works without any account files', () => {
  assert.deepEqual(resolveUser({}), { uid: 0, gid: 0, additionalGids: [0] });
  assert.deepEqual(resolveUser({ user: 'root' }), { uid: 0, gid: 0, additionalGids: [0] });
});

test('a user name gets its primary group and its member groups', () => {
  assert.deepEqual(resolveUser({ user: 'app', passwd, group }), { uid: 1000, gid: 1000, additionalGids: [1000, 998, 27] });
  assert.deepEqual(resolveUser({ user: 'ci', passwd, group }), { uid: 1001, gid: 100, additionalGids: [100, 998] });
});

test('a numeric uid uses its passwd entry when there is one, else gid 0', () => {
  assert.deepEqual(resolveUser({ user: '1000', passwd, group }), { uid: 1000, gid: 1000, additionalGids: [1000, 998, 27] });
  assert.deepEqual(resolveUser({ user: '4242', passwd, group }), { uid: 4242, gid: 0, additionalGids: [0] });
  assert.deepEqual(resolveUser({ user: '4242' }), { uid: 4242, gid: 0, additionalGids: [0] });
});

test('an explicit group replaces the primary and member groups', () => {
  assert.deepEqual(resolveUser({ user: '1000:2000', passwd, group }), { uid: 1000, gid: 2000, additionalGids: [2000] });
  assert.deepEqual(resolveUser({ user: '1234:5678' }), { uid: 1234, gid: 5678, additionalGids: [5678] });
  assert.deepEqual(resolveUser({ user: 'app:docker', passwd, group }), { uid: 1000, gid: 998, additionalGids: [998] });
  assert.deepEqual(resolveUser({ user: '77:users', passwd, group }), { uid: 77, gid: 100, additionalGids: [100] });
  assert.deepEqual(resolveUser({ user: 'app:', passwd, group }), { uid: 1000, gid: 1000, additionalGids: [1000, 998, 27] });
});

test('unknown names are a BuildError that names the user or group', () => {
  const check = (user: string, opts: { passwd?: string; group?: string }, re: RegExp) =>
    assert.throws(() => resolveUser({ user, ...opts }), (e: unknown) =>
      isBuildError(e) && e.code === 'ERR_KILN_EXEC_USER' && re.test(e.message));
  check('nobody', { passwd, group }, /no user named "nobody".*\/etc\/passwd$/);
  check('app', {}, /no user named "app".*does not exist/);
  check('app:nogroup', { passwd, group }, /no group named "nogroup"/);
  check('1000:staff', { passwd }, /no group named "staff".*does not exist/);
  check('99999999999', { passwd, group }, /no user named "99999999999"/);
});
