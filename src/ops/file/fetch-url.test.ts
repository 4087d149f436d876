import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fetchUrl } from './fetch-url.js';

const body = Buffer.from('hello from the test server\n');
const digest = `sha256:${crypto.createHash('sha256').update(body).digest('hex')}`;
const lastModified = 'Wed, 21 Oct 2015 07:28:00 GMT';
let server: http.Server;
let origin = '';
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kiln-fetch-'));

before(async () => {
  server = http.createServer((req, res) => {
    if (req.url === '/files/data.txt') {
      res.writeHead(200, { 'last-modified': lastModified, 'content-length': body.length });
      res.end(body);
    } else if (req.url === '/') {
      res.writeHead(200, { 'content-disposition': 'attachment; filename="named.bin"' });
      res.end(body);
    } else if (req.url === '/redirect') {
      res.writeHead(302, { location: '/files/data.txt' });
      res.end();
    } else {
      res.writeHead(404);
      res.end('no');
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
after(() => {
  server.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

describe('fetchUrl', () => {
  test('downloads, names the file from the URL, takes mtime from Last-Modified, mode 0600', async () => {
    const destFile = path.join(dir, 'a');
    const r = await fetchUrl({ url: `${origin}/files/data.txt`, destFile, checksum: digest });
    assert.equal(r.digest, digest);
    assert.equal(r.name, 'data.txt');
    assert.equal(r.size, body.length);
    assert.equal(r.mtime?.toISOString(), new Date(lastModified).toISOString());
    assert.deepEqual(fs.readFileSync(destFile), body);
    const st = fs.statSync(destFile);
    assert.equal(st.mode & 0o777, 0o600);
    assert.equal(st.mtimeMs, Date.parse(lastModified));
  });

  test('follows redirects', async () => {
    const r = await fetchUrl({ url: `${origin}/redirect`, destFile: path.join(dir, 'b') });
    assert.equal(r.digest, digest);
  });

  test('a URL without a path uses Content-Disposition', async () => {
    const r = await fetchUrl({ url: `${origin}/`, destFile: path.join(dir, 'c') });
    assert.equal(r.name, 'named.bin');
    assert.equal(r.mtime, undefined);
  });

  test('a checksum mismatch fails and leaves no file', async () => {
    const destFile = path.join(dir, 'd');
    await assert.rejects(fetchUrl({ url: `${origin}/files/data.txt`, destFile, checksum: `sha256:${'0'.repeat(64)}` }), {
      code: 'ERR_KILN_FETCH_CHECKSUM',
    });
    assert.equal(fs.existsSync(destFile), false);
    assert.deepEqual(fs.readdirSync(dir).filter((f) => f.startsWith('d')), []);
  });

  test('HTTP errors, bad checksums and bad schemes are BuildErrors', async () => {
    await assert.rejects(fetchUrl({ url: `${origin}/missing`, destFile: path.join(dir, 'e') }), (e: unknown) => {
      assert.equal((e as { code?: string }).code, 'ERR_KILN_FETCH_FAILED');
      assert.match((e as Error).message, /404/);
      return true;
    });
    await assert.rejects(fetchUrl({ url: `${origin}/x`, destFile: path.join(dir, 'f'), checksum: 'md5:abc' }), { code: 'ERR_KILN_ARGUMENT' });
    await assert.rejects(fetchUrl({ url: 'ftp://example.com/x', destFile: path.join(dir, 'g') }), { code: 'ERR_KILN_ARGUMENT' });
    await assert.rejects(fetchUrl({ url: 'http://127.0.0.1:1/x', destFile: path.join(dir, 'h') }), { code: 'ERR_KILN_FETCH_FAILED' });
  });
});
