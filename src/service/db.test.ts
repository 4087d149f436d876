import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { SqliteServiceStore } from './db.js';

test('a service.db of an earlier kiln is migrated: builds gain who started them, old rows keep none', async (t) => {
  const dir = mkdtempSync(path.join(tmpdir(), 'kiln-servicedb-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'service.db');
  // the builds table as kiln wrote it before builds.created_by_key
  const old = new Database(file);
  old.exec(`CREATE TABLE builds (id TEXT PRIMARY KEY, team_id TEXT NOT NULL, status TEXT NOT NULL, request TEXT NOT NULL, result TEXT,
    error TEXT, template TEXT, created INTEGER NOT NULL, started INTEGER, finished INTEGER);
    INSERT INTO builds (id, team_id, status, request, template, created) VALUES ('old', 't1', 'success', '{}', 'app', 1);`);
  old.close();
  const store = new SqliteServiceStore(file);
  try {
    assert.equal((await store.getBuild('t1', 'old'))?.startedBy, null);
    await store.createBuild({ id: 'new', teamId: 't1', request: {}, template: null, createdByKey: 'k12345678' });
    assert.equal((await store.getBuild('t1', 'new'))?.startedBy, 'k12345678');
  } finally {
    await store.close();
  }
  const again = new SqliteServiceStore(file); // a current database is left as it is
  try {
    assert.equal((await again.getBuild('t1', 'new'))?.startedBy, 'k12345678');
  } finally {
    await again.close();
  }
  const check = new Database(file, { readonly: true });
  assert.equal(check.pragma('user_version', { simple: true }), 1);
  check.close();
});
