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
