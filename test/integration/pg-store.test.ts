/**
 * The service store (src/service ServiceStore), one repository suite (test/helpers/service-store-suite.ts) run
 * against both implementations: SQLite (ROOT/service.db, the one-machine default) and PostgreSQL 15 (a real server,
 * `kiln serve --database`). Then what only the PostgreSQL schema records (key hashes, the worker, attempts).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { migratePg, openPg } from '../../src/pg/index.js';
import { hashKey, openServiceStore, PgServiceStore, SqliteServiceStore } from '../../src/service/index.js';
import { skipWithoutPostgres, startPostgres } from '../helpers/postgres.js';
import { serviceStoreSuite } from '../helpers/service-store-suite.js';

test('the repository suite on SQLite (ROOT/service.db)', async (t) => {
  const root = mkdtempSync(path.join(tmpdir(), 'kiln-store-'));
  t.after(() => rmSync(root, { recursive: true, force: true }));
  const store = await openServiceStore({ root });
  assert.ok(store instanceof SqliteServiceStore);
  try {
    await serviceStoreSuite(store);
  } finally {
    await store.close();
  }
});

test('the repository suite on PostgreSQL, and what only its schema records', async (t) => {
  if (skipWithoutPostgres(t)) return;
  const srv = await startPostgres(t);
  const store = await openServiceStore({ root: '/nonexistent', database: await srv.createDatabase('kiln') });
  assert.ok(store instanceof PgServiceStore);
  try {
    await serviceStoreSuite(store);
  } finally {
    await store.close();
  }
  // the same database again: migrated once, the records are there
  const db = await openPg({ database: srv.urlFor('kiln') });
  t.after(() => db.close());
  assert.deepEqual(await migratePg(db), [], 'already migrated');
  const again = new PgServiceStore(db);
  const alpha = await again.getTeamByName('alpha');
  const k = await again.createKey(alpha!.id);
  const [stored] = await db.query<{ hash: string }>('SELECT hash FROM api_keys WHERE id = $1', [k.id]);
  assert.equal(stored!.hash, hashKey(k.key));
  const all = await db.query<{ row: string }>('SELECT row_to_json(k)::text AS row FROM api_keys k');
  assert.ok(all.every((r) => !r.row.includes(k.key)), 'the key itself is nowhere in the table');
  const [att] = await db.query<{ attempt: number; worker: string }>("SELECT attempt, worker FROM builds WHERE id = 'b1'");
  assert.deepEqual(att, { attempt: 1, worker: 'worker-a' });
});

test('PostgreSQL: a node following a build is told of events another node appends (LISTEN/NOTIFY), also after its listening connection was lost', { timeout: 60_000 }, async (t) => {
  if (skipWithoutPostgres(t)) return;
  const srv = await startPostgres(t);
  const database = await srv.createDatabase('kiln');
  const follower = await openServiceStore({ root: '/nonexistent', database });
  const writer = await openServiceStore({ root: '/nonexistent', database }); // another node: its own pool
  const admin = await openPg({ database });
  t.after(async () => {
    await follower.close();
    await writer.close();
    await admin.close();
  });
  const team = await writer.createTeam('follow');
  for (const id of ['bw1', 'bw2']) await writer.createBuild({ id, teamId: team.id, request: {}, template: null });
  const told: string[] = [];
  let next: (() => void) | undefined;
  const nextCall = (): Promise<void> => new Promise((r) => (next = r));
  const stop = await follower.watchEvents!('bw1', () => {
    told.push('bw1');
    next?.();
  });
  let call = nextCall();
  await writer.appendEvent('bw2', 1, '{"type":"other build"}');
  await writer.appendEvent('bw1', 1, '{"type":"step"}');
  await call;
  assert.deepEqual(told, ['bw1'], 'told of its build only');
  const listening = await admin.query<{ pid: number; query: string }>("SELECT pid, query FROM pg_stat_activity WHERE application_name = 'kiln-listen'");
  assert.deepEqual(listening.map((r) => r.query), ['LISTEN kiln_build_events'], 'one listening session for the node');
  // the listening connection is killed (a server restart, a proxy timeout): it comes back and says so
  call = nextCall();
  await admin.query('SELECT pg_terminate_backend($1)', [listening[0]!.pid]);
  await call;
  assert.equal(told.length, 2, 'told once it listens again (what was sent meanwhile is lost: read again)');
  call = nextCall();
  await writer.appendEvent('bw1', 2, '{"type":"step"}');
  await call;
  assert.equal(told.length, 3, 'and told of new events again');
  stop();
});
