/** src/pg against a real PostgreSQL 15 started by the test (test/helpers/postgres.ts). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { connect } from 'node:net';
import { appliedMigrations, migratePg, openPg } from '../../src/pg/index.js';
import { formatUserError } from '../../src/errors/index.js';
import { skipWithoutPostgres, startPostgres } from '../helpers/postgres.js';

test('the test server listens on its unix socket only, and stop removes its directory', async (t) => {
  if (skipWithoutPostgres(t)) return;
  const srv = await startPostgres(t);
  const db = await openPg({ database: srv.url });
  const [row] = await db.query<{ v: string }>("SELECT current_setting('server_version') AS v");
  assert.match(row!.v, /^15\./);
  await db.close();
  // a socket directory path works as well as a URL
  const bySocket = await openPg({ database: srv.socketDir, port: srv.port });
  assert.equal((await bySocket.query<{ one: number }>('SELECT 1 AS one'))[0]!.one, 1);
  await bySocket.close();
  const tcp = await new Promise<string>((resolve) => {
    const s = connect(srv.port, '127.0.0.1');
    s.once('connect', () => { s.destroy(); resolve('connected'); });
    s.once('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? 'error'));
  });
  assert.equal(tcp, 'ECONNREFUSED', 'listen_addresses is empty: no TCP listener');
  await srv.stop();
  assert.equal(existsSync(srv.socketDir), false);
});

test('an unreachable database is a clear error naming the address without its password', async (t) => {
  if (skipWithoutPostgres(t)) return;
  const srv = await startPostgres(t);
  await assert.rejects(openPg({ database: `postgres://postgres:hunter2@/postgres?host=${encodeURIComponent(srv.socketDir)}&port=1` }), (err: Error & { code?: string }) => {
    assert.equal(err.code, 'ERR_KILN_DB_UNAVAILABLE');
    assert.match(err.message, /cannot connect to PostgreSQL \(postgres:\/\/postgres:\*\*\*@/);
    assert.doesNotMatch(formatUserError(err), /hunter2|\n\s+at /);
    return true;
  });
  await assert.rejects(openPg({ database: srv.urlFor('no_such_db') }), (err: Error & { code?: string }) => {
    assert.equal(err.code, 'ERR_KILN_DB_UNAVAILABLE');
    assert.match(err.message, /database "no_such_db" does not exist/);
    return true;
  });
});

test('migrations create the schema once, even with several nodes starting at the same moment', async (t) => {
  if (skipWithoutPostgres(t)) return;
  const srv = await startPostgres(t);
  const url = await srv.createDatabase('kiln');
  const nodes = await Promise.all([1, 2, 3].map(() => openPg({ database: url, max: 2 })));
  t.after(() => Promise.all(nodes.map((n) => n.close())));
  const results = await Promise.all(nodes.map((n) => migratePg(n)));
  const applied = results.flat().map((m) => m.name).sort();
  assert.deepEqual(applied, ['0001_initial-schema', '0002_build-queue', '0003_usage-by-kind'], 'each migration ran exactly once across the three nodes');
  assert.deepEqual(await appliedMigrations(nodes[0]!), ['0001_initial-schema', '0002_build-queue', '0003_usage-by-kind']);
  assert.deepEqual(await migratePg(nodes[1]!), [], 'a current schema is left alone');
  const tables = (await nodes[0]!.query<{ t: string }>("SELECT tablename AS t FROM pg_tables WHERE schemaname = 'public' ORDER BY 1")).map((r) => r.t);
  for (const name of ['api_keys', 'build_events', 'builds', 'queue_jobs', 'queue_leases', 'queue_team_limits', 'teams', 'template_tags', 'templates', 'usage']) {
    assert.ok(tables.includes(name), `table ${name} exists (have ${tables.join(', ')})`);
  }
});

test('the schema keeps only key hashes, enforces its states, and a team deletion takes its rows along', async (t) => {
  if (skipWithoutPostgres(t)) return;
  const srv = await startPostgres(t);
  const db = await openPg({ database: srv.url });
  t.after(() => db.close());
  await migratePg(db);
  await db.query("INSERT INTO teams (id, name, limits) VALUES ('t1', 'one', $1)", [{ concurrentBuilds: 2 }]);
  await assert.rejects(db.query("INSERT INTO teams (id, name, limits) VALUES ('t2', 'two', '[1]')"), /teams_limits_check/);
  const secret = 'kiln_live_0123456789abcdef';
  const hash = createHash('sha256').update(secret).digest('hex');
  await db.query("INSERT INTO api_keys (id, team_id, hash, prefix) VALUES ('k1', 't1', $1, 'kiln_liv')", [hash]);
  await assert.rejects(db.query("INSERT INTO api_keys (id, team_id, hash) VALUES ('k2', 't1', $1)", [secret]), /api_keys_hash_check/, 'a raw key is not a sha256 hex digest and is refused');
  await assert.rejects(db.query("INSERT INTO api_keys (id, team_id, hash) VALUES ('k3', 't1', $1)", [hash]), /duplicate key/);
  await db.query("INSERT INTO templates (id, team_id, name) VALUES ('tp1', 't1', 'py')");
  await assert.rejects(db.query("INSERT INTO templates (id, team_id, name) VALUES ('tp2', 't1', 'py')"), /duplicate key/, 'a name is unique within a team');
  await db.query("INSERT INTO builds (id, team_id, template_id, created_by_key, request) VALUES ('b1', 't1', 'tp1', 'k1', $1)", [{ dockerfile: 'FROM busybox' }]);
  await assert.rejects(db.query("UPDATE builds SET status = 'exploded' WHERE id = 'b1'"), /builds_status_check/);
  await db.query("UPDATE builds SET status = 'success', result = $1, image_digest = 'sha256:ab', steps_total = 3, steps_cached = 2 WHERE id = 'b1'", [{ digest: 'sha256:ab', steps: [] }]);
  await db.query("INSERT INTO template_tags (template_id, tag, build_id, image_digest, size_bytes) VALUES ('tp1', 'latest', 'b1', 'sha256:ab', 1234)");
  await db.transaction(async (c) => {
    for (let seq = 0; seq < 3; seq++) await c.query("INSERT INTO build_events (build_id, seq, data) VALUES ('b1', $1, $2)", [seq, { type: 'log', line: `l${seq}` }]);
  });
  await assert.rejects(db.transaction(async (c) => {
    await c.query("INSERT INTO build_events (build_id, seq, data) VALUES ('b1', 3, '{}')");
    await c.query("INSERT INTO build_events (build_id, seq, data) VALUES ('b1', 0, '{}')");
  }), /duplicate key/);
  assert.equal((await db.query<{ n: string }>("SELECT count(*) AS n FROM build_events WHERE build_id = 'b1'"))[0]!.n, '3', 'the failed transaction left nothing');
  await db.query("INSERT INTO usage (team_id, build_id, kind, quantity) VALUES ('t1', 'b1', 'build_seconds', 12.5)");
  const [tag] = await db.query<{ size_bytes: string; id: string }>("SELECT tt.size_bytes, b.id FROM template_tags tt JOIN builds b ON b.id = tt.build_id WHERE tt.tag = 'latest'");
  assert.deepEqual(tag, { size_bytes: '1234', id: 'b1' });
  await db.query("DELETE FROM teams WHERE id = 't1'");
  for (const table of ['api_keys', 'templates', 'template_tags', 'builds', 'build_events', 'usage']) {
    assert.equal((await db.query<{ n: string }>(`SELECT count(*) AS n FROM ${table}`))[0]!.n, '0', `${table} emptied with its team`);
  }
});
