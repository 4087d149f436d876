import { test } from 'node:test';
import assert from 'node:assert/strict';
import { pgConnectionString, redactPgUrl } from './connect.js';
import { formatUserError } from '../errors/index.js';

test('--database accepts postgres URLs and socket directories', () => {
  assert.equal(pgConnectionString({ database: 'postgres://kiln:pw@db.internal:5432/kiln' }), 'postgres://kiln:pw@db.internal:5432/kiln');
  assert.equal(pgConnectionString({ database: 'postgresql://kiln@/kiln?host=/run/postgresql' }), 'postgresql://kiln@/kiln?host=/run/postgresql');
  assert.equal(
    pgConnectionString({ database: '/run/postgresql', user: 'kiln', databaseName: 'meta', port: 5433 }),
    'postgres://kiln@/meta?host=%2Frun%2Fpostgresql&port=5433',
  );
});

test('a bad --database is a coded error that names the problem and never prints the password', () => {
  const cases: Array<[string, RegExp]> = [
    ['mysql://u:secret@h/db', /scheme must be postgres:\/\/ or postgresql:\/\/, not mysql:\/\//],
    ['kiln-db', /not a URL or an absolute socket directory/],
    ['postgres://u:secret@/db', /no host/],
  ];
  for (const [value, problem] of cases) {
    assert.throws(() => pgConnectionString({ database: value }), (err: Error & { code?: string }) => {
      assert.equal(err.code, 'ERR_KILN_DB_URL');
      assert.match(err.message, problem);
      assert.doesNotMatch(err.message, /secret/);
      assert.match(formatUserError(err), /hint: use --database postgres:\/\//);
      return true;
    });
  }
  assert.equal(redactPgUrl('postgres://u:secret@h:1/db'), 'postgres://u:***@h:1/db');
});
