import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { Writable } from 'node:stream';
import { sha256 } from '../oci/index.js';
import { RegistryClient } from './client.js';

/**
 * A tiny in-process registry speaking just enough of the distribution API to exercise the client's auth flows,
 * uploads and digest checks. `mode` picks the auth scheme it demands.
 */
function fakeRegistry(): { server: Server; state: { mode: 'bearer' | 'basic'; tokenRequests: string[]; blobs: Map<string, Buffer>; uploads: Map<string, Buffer[]>; log: string[]; corrupt: boolean; failPatch: number } } {
  const state = { mode: 'bearer' as 'bearer' | 'basic', tokenRequests: [] as string[], blobs: new Map<string, Buffer>(), uploads: new Map<string, Buffer[]>(), log: [] as string[], corrupt: false, failPatch: 0 };
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const url = new URL(req.url!, 'http://x');
      const host = req.headers.host!;
      state.log.push(`${req.method} ${url.pathname}`);
      if (url.pathname === '/token') {
        state.tokenRequests.push(`${url.searchParams.getAll('scope').join(' ')}|${req.headers.authorization ?? ''}`);
        if (req.headers.authorization !== `Basic ${Buffer.from('alice:pw').toString('base64')}`) return void res.writeHead(401).end();
        return void res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ token: 'tok-1' }));
      }
      const authOk = state.mode === 'bearer' ? req.headers.authorization === 'Bearer tok-1' : req.headers.authorization === `Basic ${Buffer.from('alice:pw').toString('base64')}`;
      if (!authOk) {
        const ch = state.mode === 'bearer' ? `Bearer realm="http://${host}/token",service="fake"` : 'Basic realm="fake"';
        return void res.writeHead(401, { 'www-authenticate': ch, 'content-type': 'application/json' }).end(JSON.stringify({ errors: [{ code: 'UNAUTHORIZED', message: 'authentication required' }] }));
      }
      let m: RegExpExecArray | null;
      if ((m = /^\/v2\/(.+)\/blobs\/uploads\/(\w*)$/.exec(url.pathname))) {
        const id = m[2] || `u${state.uploads.size + 1}`;
        if (req.method === 'POST') {
          state.uploads.set(id, []);
          return void res.writeHead(202, { location: `/v2/${m[1]}/blobs/uploads/${id}` }).end();
        }
        if (req.method === 'GET') {
          const have = state.uploads.get(id)!.reduce((a, b) => a + b.length, 0);
          return void res.writeHead(204, { location: `/v2/${m[1]}/blobs/uploads/${id}`, range: `0-${have - 1}` }).end();
        }
        if (req.method === 'PATCH') {
          if (state.failPatch > 0 && --state.failPatch === 0) {
            // keep only half of the chunk, then fail: the client must ask where to resume
            state.uploads.get(id)!.push(Buffer.concat(chunks).subarray(0, 1000));
            return void res.writeHead(500).end();
          }
          state.uploads.get(id)!.push(Buffer.concat(chunks));
          return void res.writeHead(202, { location: `/v2/${m[1]}/blobs/uploads/${id}` }).end();
        }
        if (req.method === 'PUT') {
          const data = Buffer.concat([...state.uploads.get(id)!, Buffer.concat(chunks)]);
          const digest = url.searchParams.get('digest')!;
          if (sha256(data) !== digest) return void res.writeHead(400).end(JSON.stringify({ errors: [{ code: 'DIGEST_INVALID', message: 'digest did not match' }] }));
          state.blobs.set(digest, data);
          return void res.writeHead(201).end();
        }
      }
      if ((m = /^\/v2\/(.+)\/blobs\/(sha256:\w+)$/.exec(url.pathname))) {
        const b = state.blobs.get(m[2]!);
        if (!b) return void res.writeHead(404).end();
        if (req.method === 'HEAD') return void res.writeHead(200, { 'content-length': b.length }).end();
        const body = state.corrupt ? Buffer.from(b.map((x) => x ^ 1)) : b;
        return void res.writeHead(200, { 'content-length': body.length }).end(body);
      }
      res.writeHead(404).end();
    });
  });
  return { server, state };
}

describe('RegistryClient against a fake registry', () => {
  const { server, state } = fakeRegistry();
  let host = '';
  before(async () => {
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    host = `127.0.0.1:${(server.address() as { port: number }).port}`;
  });
  after(() => new Promise<void>((r) => server.close(() => r())));

  const data = Buffer.from('x'.repeat(5000));
  const descriptor = { mediaType: 'application/octet-stream', digest: sha256(data), size: data.length };
  const source = { size: data.length, read: async (s: number, e: number) => data.subarray(s, e) };

  test('bearer realm flow: the token is fetched with basic credentials, for the scopes asked, then reused', async () => {
    state.mode = 'bearer';
    const client = new RegistryClient({ dockerConfig: false, credentials: { [host]: { username: 'alice', password: 'pw' } }, chunkSize: 2048 });
    assert.equal(await client.pushBlob({ host, repository: 'team/app', descriptor, source }), 'uploaded');
    assert.ok(state.tokenRequests.length >= 1);
    assert.match(state.tokenRequests[0]!, /^repository:team\/app:pull,push\|Basic /);
    const patches = state.log.filter((l) => l.startsWith('PATCH')).length;
    assert.equal(patches, 3, 'a 5000-byte blob in 2048-byte chunks takes three PATCHes');
    const before = state.tokenRequests.length;
    assert.equal(await client.pushBlob({ host, repository: 'team/app', descriptor, source }), 'exists');
    assert.equal(state.tokenRequests.length, before, 'the cached token is reused');
  });

  test('a failed chunk is resumed from the offset the registry reports', async () => {
    state.mode = 'bearer';
    const other = Buffer.from('y'.repeat(7000));
    const d = { mediaType: 'application/octet-stream', digest: sha256(other), size: other.length };
    state.failPatch = 2;
    const client = new RegistryClient({ dockerConfig: false, credentials: { [host]: { username: 'alice', password: 'pw' } }, chunkSize: 2048 });
    assert.equal(await client.pushBlob({ host, repository: 'team/app', descriptor: d, source: { size: other.length, read: async (s, e) => other.subarray(s, e) } }), 'uploaded');
    assert.ok(state.blobs.get(d.digest)?.equals(other), 'the registry assembled the exact bytes');
    assert.ok(state.log.some((l) => l.startsWith('GET /v2/team/app/blobs/uploads/')), 'the client asked for the upload status');
  });

  test('wrong credentials are ERR_KILN_REGISTRY_AUTH, and the message holds no password', async () => {
    state.mode = 'bearer';
    const client = new RegistryClient({ dockerConfig: false, credentials: { [host]: { username: 'alice', password: 'wrong-secret' } } });
    await assert.rejects(client.blobSize({ host, repository: 'team/app', digest: descriptor.digest }), (e: Error & { code?: string }) => {
      assert.equal(e.code, 'ERR_KILN_REGISTRY_AUTH');
      assert.doesNotMatch(e.message, /wrong-secret/);
      return true;
    });
  });

  test('basic auth challenge', async () => {
    state.mode = 'basic';
    const anonymous = new RegistryClient({ dockerConfig: false });
    await assert.rejects(anonymous.blobSize({ host, repository: 'team/app', digest: descriptor.digest }), { code: 'ERR_KILN_REGISTRY_AUTH' });
    const client = new RegistryClient({ dockerConfig: false, credentials: { [host]: { username: 'alice', password: 'pw' } } });
    assert.equal(await client.blobSize({ host, repository: 'team/app', digest: descriptor.digest }), data.length);
  });

  test('a download whose bytes do not match the digest fails with ERR_KILN_REGISTRY_DIGEST', async () => {
    state.mode = 'basic';
    const client = new RegistryClient({ dockerConfig: false, credentials: { [host]: { username: 'alice', password: 'pw' } } });
    const got: Buffer[] = [];
    await client.fetchBlob({ host, repository: 'team/app', descriptor, sink: new Writable({ write: (c: Buffer, _e, cb) => (got.push(c), cb()) }) });
    assert.ok(Buffer.concat(got).equals(data));
    state.corrupt = true;
    try {
      await assert.rejects(client.fetchBlob({ host, repository: 'team/app', descriptor, sink: new Writable({ write: (_c, _e, cb) => cb() }) }), { code: 'ERR_KILN_REGISTRY_DIGEST' });
    } finally {
      state.corrupt = false;
    }
  });

  test('an unreachable registry is ERR_KILN_REGISTRY naming the URL without credentials', async () => {
    const client = new RegistryClient({ dockerConfig: false });
    await assert.rejects(client.getManifest({ host: '127.0.0.1:1', repository: 'a', tag: 'b' }), (e: Error & { code?: string }) => {
      assert.equal(e.code, 'ERR_KILN_REGISTRY');
      assert.match(e.message, /http:\/\/127\.0\.0\.1:1\/v2\/a\/manifests\/b/);
      return true;
    });
    assert.equal(client.baseUrl('registry.example.com'), 'https://registry.example.com/v2/');
    assert.equal(new RegistryClient({ dockerConfig: false, insecureHosts: ['registry.example.com'] }).baseUrl('registry.example.com'), 'http://registry.example.com/v2/');
    assert.equal(client.baseUrl('docker.io'), 'https://registry-1.docker.io/v2/');
  });
});
