import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { loadCredentialsKey, openCredentials, requestToRun, requestToStore, sealCredentials } from './credentials.js';

const creds = { username: 'robot', password: 's3cret-pw' };
const spec = (base: Record<string, unknown>) => ({ template: { base: { type: 'image', ref: 'reg.example:5000/private/base:1', ...base }, steps: [] }, context: [] });

test('sealed credentials open only with the same key, team and build, and unchanged', () => {
  const key = randomBytes(32);
  const at = { teamId: 't1', buildId: 'b1' };
  const sealed = sealCredentials(key, creds, at);
  assert.ok(!JSON.stringify(sealed).includes('s3cret'), 'no plaintext in the sealed value');
  assert.deepEqual(openCredentials(key, sealed, at), creds);
  const refused = (fn: () => unknown): void => assert.throws(fn, (e: Error & { code?: string }) => e.code === 'ERR_KILN_SERVICE_CREDENTIALS' && !e.message.includes('s3cret'));
  refused(() => openCredentials(randomBytes(32), sealed, at));
  refused(() => openCredentials(key, sealed, { teamId: 't1', buildId: 'b2' }));
  refused(() => openCredentials(key, sealed, { teamId: 't2', buildId: 'b1' }));
  const data = Buffer.from(sealed.data, 'base64');
  data[0]! ^= 1;
  refused(() => openCredentials(key, { ...sealed, data: data.toString('base64') }, at));
  assert.notEqual(sealCredentials(key, creds, at).iv, sealed.iv, 'a fresh nonce each time');
});

test('a request is stored with sealed credentials (or none without a key) and opened for the run', () => {
  const key = randomBytes(32);
  const at = { teamId: 't1', buildId: 'b1' };
  const stored = requestToStore(spec({ credentials: creds }), { key, ...at });
  assert.ok(!JSON.stringify(stored).includes('s3cret'));
  assert.equal('credentials' in stored.template.base, false);
  assert.ok('sealedCredentials' in stored.template.base);
  assert.deepEqual(requestToRun(stored, { key, ...at }), spec({ credentials: creds }), 'the run gets them back, the sealed field gone');
  assert.throws(() => requestToRun(stored, at), (e: Error & { code?: string }) => e.code === 'ERR_KILN_SERVICE_CREDENTIALS' && /--credentials-key-file/.test(e.message));
  assert.deepEqual(requestToStore(spec({ credentials: creds }), at), spec({}), 'no key: left out of the stored request');
  assert.deepEqual(requestToStore(spec({}), { key, ...at }), spec({}), 'nothing to seal');
  assert.throws(() => requestToStore(spec({ sealedCredentials: { alg: 'A256GCM', iv: '', tag: '', data: '' } }), { key, ...at }), /a field the server sets itself/);
  assert.throws(() => requestToStore(spec({ credentials: { username: 'x', password: 7 } }), { key, ...at }), /as strings/);
});

test('the key file: 32 raw bytes, 64 hex digits or base64; anything else is refused', (t) => {
  const dir = mkdtempSync(path.join(tmpdir(), 'kiln-key-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const key = randomBytes(32);
  const write = (name: string, data: string | Buffer): string => {
    const f = path.join(dir, name);
    writeFileSync(f, data);
    return f;
  };
  assert.deepEqual(loadCredentialsKey(write('raw', key)), key);
  assert.deepEqual(loadCredentialsKey(write('hex', `${key.toString('hex')}\n`)), key);
  assert.deepEqual(loadCredentialsKey(write('b64', `${key.toString('base64')}\n`)), key);
  for (const bad of [write('short', randomBytes(16)), write('text', 'not a key\n'), path.join(dir, 'missing')]) {
    assert.throws(() => loadCredentialsKey(bad), (e: Error & { code?: string }) => e.code === 'ERR_KILN_SERVICE_CREDENTIALS' && e.message.includes('--credentials-key-file'));
  }
});
