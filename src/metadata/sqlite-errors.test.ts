import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { openMetadata, translateSqliteError } from './index.js';
import { formatUserError } from '../errors/index.js';

const sqliteError = (code: string, message: string): Error => Object.assign(new Error(message), { code });

test('SQLite result codes become coded BuildErrors with a sentence', () => {
  const file = '/var/lib/kiln/metadata.db';
  const full = translateSqliteError(sqliteError('SQLITE_FULL', 'database or disk is full'), file) as { code: string; message: string };
  assert.equal(full.code, 'ERR_KILN_NO_SPACE');
  assert.equal(full.message, 'no space left on device while writing the metadata database under /var/lib/kiln');
  assert.match(formatUserError(full), /hint: .*kiln du.*kiln prune/);
  const busy = translateSqliteError(sqliteError('SQLITE_BUSY', 'database is locked'), file) as { code: string };
  assert.equal(busy.code, 'ERR_KILN_DB_BUSY');
  const io = translateSqliteError(sqliteError('SQLITE_IOERR_WRITE', 'disk I/O error'), '/nonexistent-dir/metadata.db') as { code: string; message: string };
  assert.equal(io.code, 'ERR_KILN_DB_IO');
  assert.match(io.message, /disk I\/O error on the metadata database \/nonexistent-dir\/metadata\.db \(SQLITE_IOERR_WRITE\)/);
  const corrupt = translateSqliteError(sqliteError('SQLITE_CORRUPT', 'database disk image is malformed'), file) as { code: string };
  assert.equal(corrupt.code, 'ERR_KILN_DB_IO');
  const other = new Error('x');
  assert.equal(translateSqliteError(other, file), other, 'other errors pass through');
});

test('a real lock held by another connection comes out as ERR_KILN_DB_BUSY', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'kiln-sqlite-'));
  try {
    const file = path.join(dir, 'metadata.db');
    openMetadata(file).close();
    const holder = new Database(file);
    holder.exec('BEGIN IMMEDIATE');
    const other = new Database(file, { timeout: 0 });
    let caught: unknown;
    try {
      other.exec('BEGIN IMMEDIATE');
    } catch (err) {
      caught = translateSqliteError(err, file);
    }
    assert.equal((caught as { code?: string })?.code, 'ERR_KILN_DB_BUSY');
    assert.match(formatUserError(caught), /the metadata database .* is busy/);
    other.close();
    holder.exec('ROLLBACK');
    holder.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('programmer errors and raw ENOSPC never reach a user as their raw text', () => {
  const te = formatUserError(new TypeError("Cannot read properties of undefined (reading 'kind')"));
  assert.doesNotMatch(te, /Cannot read properties|TypeError: /);
  assert.match(te, /internal error/);
  const nospace = formatUserError(Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC', path: '/root/kiln/content/ingest/123' }));
  assert.match(nospace, /^error: no space left on device while writing \/root\/kiln\/content\/ingest\/123 under \/root\/kiln\/content\/ingest/);
  assert.match(nospace, /kiln du/);
  assert.match(formatUserError(undefined), /internal error/);
});
