import assert from 'node:assert/strict';
import { test } from 'node:test';
import http from 'node:http';
import net from 'node:net';
import { linkSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { connectUnix, requestOn } from './unix-http.js';
import { readAll, responseError } from './response.js';

async function listen(server: net.Server, file: string): Promise<void> {
  await new Promise<void>((resolve) => server.listen(file, resolve));
}

async function withDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = mkdtempSync(path.join(tmpdir(), 'kiln-unix-http-'));
  try {
    await fn(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

test('requestOn reads what node:http sends: a chunked stream line by line, a Content-Length body, the request body', async () => {
  await withDir(async (dir) => {
    const sock = path.join(dir, 's.sock');
    const seen: Array<{ method?: string; url?: string; type?: string; body: string }> = [];
    const server = http.createServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString('utf8')));
      req.on('end', () => {
        seen.push({ method: req.method, url: req.url, type: req.headers['content-type'], body });
        if (req.url === '/stream') {
          // written apart in time so they arrive as separate chunks
          res.writeHead(200, { 'content-type': 'application/x-ndjson' });
          res.write('{"n":1}\n');
          setTimeout(() => {
            res.write(`{"n":2,"pad":"${'x'.repeat(70_000)}"}\n`);
            setTimeout(() => res.end('{"n":3}\n'), 20);
          }, 20);
        } else {
          res.writeHead(409, { 'content-type': 'application/json' });
          res.end(JSON.stringify({ error: { code: 'ERR_KILN_SERVICE_REQUEST', message: 'no such thing' } }));
        }
      });
    });
    await listen(server, sock);
    try {
      const conn = await connectUnix(sock);
      assert.ok(conn);
      const res = await requestOn(conn, { method: 'POST', path: '/stream', headers: { 'content-type': 'application/json' }, body: '{"héllo":1}' });
      assert.equal(res.status, 200);
      assert.equal(res.headers['transfer-encoding'], 'chunked');
      const lines = (await readAll(res)).toString('utf8').trim().split('\n').map((l) => JSON.parse(l) as { n: number });
      assert.deepEqual(lines.map((l) => l.n), [1, 2, 3]);
      assert.deepEqual(seen[0], { method: 'POST', url: '/stream', type: 'application/json', body: '{"héllo":1}' });

      const conn2 = await connectUnix(sock);
      const bad = await requestOn(conn2!, { method: 'GET', path: '/nothing' });
      assert.equal(bad.status, 409);
      const err = await responseError(bad);
      assert.equal(err.code, 'ERR_KILN_SERVICE_REQUEST');
      assert.match(err.message, /no such thing/);
    } finally {
      server.close();
    }
  });
});

test('requestOn reads a body framed by the end of the connection, and chunks split anywhere', async () => {
  await withDir(async (dir) => {
    const sock = path.join(dir, 'raw.sock');
    const answers = [
      'HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\n\r\nuntil the end',
      // a chunked answer sent a byte at a time: sizes, data and CRLFs all cut apart
      'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\nA;ext=1\r\n, chunked!\r\n0\r\n\r\n',
    ];
    let i = 0;
    const server = net.createServer((s) => {
      const answer = answers[i++]!;
      s.on('error', () => undefined); // the reader may close once it has the last chunk
      s.once('data', async () => {
        if (i === 1) return void s.end(answer);
        for (const ch of answer) {
          s.write(ch);
          await new Promise((r) => setImmediate(r));
        }
        s.end();
      });
    });
    await listen(server, sock);
    try {
      const a = await requestOn((await connectUnix(sock))!, { method: 'GET', path: '/' });
      assert.equal((await readAll(a)).toString(), 'until the end');
      const b = await requestOn((await connectUnix(sock))!, { method: 'GET', path: '/' });
      assert.equal((await readAll(b)).toString(), 'hello, chunked!');
    } finally {
      server.close();
    }
  });
});

test('connectUnix: undefined where nobody listens (no file, a plain file, a socket left by a dead server)', async () => {
  await withDir(async (dir) => {
    assert.equal(await connectUnix(path.join(dir, 'none.sock')), undefined);
    writeFileSync(path.join(dir, 'file.sock'), '');
    assert.equal(await connectUnix(path.join(dir, 'file.sock')), undefined);
    // a socket file whose server is gone (closed without unlinking: what a killed server leaves)
    const stale = path.join(dir, 'stale.sock');
    const server = net.createServer();
    await listen(server, stale);
    const copy = path.join(dir, 'copy.sock');
    // a killed server leaves its socket file; a closing one unlinks it, so a second name is linked first
    linkSync(stale, copy);
    await new Promise<void>((r) => server.close(() => r()));
    assert.equal(await connectUnix(copy), undefined);
  });
});

test('requestOn: an abort while the answer streams ends the read with an AbortError; a cut answer is an error', async () => {
  await withDir(async (dir) => {
    const sock = path.join(dir, 'slow.sock');
    const server = net.createServer((s) => {
      s.once('data', (d) => {
        if (d.toString().includes('/cut')) return void s.end('HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\nshort');
        s.write('HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n3\r\none\r\n'); // and then nothing
      });
      s.on('error', () => undefined);
    });
    await listen(server, sock);
    try {
      const ac = new AbortController();
      const res = await requestOn((await connectUnix(sock))!, { method: 'GET', path: '/slow', signal: ac.signal });
      const it = res.body[Symbol.asyncIterator]();
      assert.equal((await it.next()).value?.toString(), 'one');
      setTimeout(() => ac.abort(), 20);
      await assert.rejects(it.next(), (err: Error) => err.name === 'AbortError');
      const cut = await requestOn((await connectUnix(sock))!, { method: 'GET', path: '/cut' });
      await assert.rejects(readAll(cut), /closed 95 bytes before the end/);
    } finally {
      server.close();
    }
  });
});
