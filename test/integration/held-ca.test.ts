/**
 * bin/kiln starts `--version`, and `build` unless a flag names a registry, without NODE_EXTRA_CA_CERTS (Node 20
 * reads that file at every start-up); a build that goes on in-process gets it back before its first fetch
 * (src/proc/trust.ts). Through the real `bin/kiln`: an HTTPS server on loopback whose certificate only
 * NODE_EXTRA_CA_CERTS names serves an `ADD` URL, and a file that does not exist as the variable shows when node read
 * it (its start-up warning) and when it did not.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import https from 'node:https';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { cleanup, imageFiles, integrationBlocker, kiln, newContext, newRoot, requireIntegration } from '../helpers/kiln.js';

const STARTUP_WARNING = /Ignoring extra certs from/;

describe('bin/kiln and NODE_EXTRA_CA_CERTS', { concurrency: false }, () => {
  let root = '';
  let tmp = '';
  let ctx = '';
  let plain = '';
  let cert = '';
  let server: https.Server | undefined;
  let socket: net.Server | undefined;
  const payload = `served over TLS ${process.pid}\n`;

  before(async () => {
    if (integrationBlocker()) return;
    tmp = mkdtempSync(path.join(tmpdir(), 'kiln-held-ca-'));
    cert = path.join(tmp, 'cert.pem');
    const key = path.join(tmp, 'key.pem');
    const r = spawnSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', '/CN=kiln-test', '-addext', 'subjectAltName=IP:127.0.0.1', '-keyout', key, '-out', cert], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    server = https.createServer({ key: readFileSync(key), cert: readFileSync(cert) }, (_req, res) => res.end(payload));
    await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as AddressInfo).port;
    root = await newRoot();
    ctx = await newContext({ Dockerfile: `FROM busybox:latest\nADD https://127.0.0.1:${port}/payload /payload\nRUN cat /payload > /copied\n` });
    plain = await newContext({ Dockerfile: 'FROM busybox:latest\nRUN echo plain > /plain\n' });
    // A socket nobody answers on (a kiln serve that died): bin/kiln holds the variable back, the lean client finds no
    // server and the build goes on in-process.
    socket = net.createServer((c) => c.destroy());
    await new Promise<void>((resolve) => socket!.listen(path.join(root, 'kiln.sock'), resolve));
  });

  after(async () => {
    await new Promise((resolve) => (server ? server.close(resolve) : resolve(undefined)));
    await new Promise((resolve) => (socket ? socket.close(resolve) : resolve(undefined)));
    await cleanup(...[root, ctx, plain, tmp].filter(Boolean));
  });

  test('a build that goes on in-process trusts the held certificates: ADD of an HTTPS URL only they vouch for', async (t) => {
    if (!requireIntegration(t)) return;
    const metaFile = path.join(tmp, 'meta.json');
    const ok = await kiln(['build', '--root', root, '--progress=plain', '--metadata-file', metaFile, ctx], { env: { NODE_EXTRA_CA_CERTS: cert } });
    assert.equal(ok.code, 0, ok.stderr);
    const digest = (JSON.parse(readFileSync(metaFile, 'utf8')) as Record<string, string>)['containerimage.digest']!;
    const files = await imageFiles(root, digest);
    assert.equal(files.get('copied')?.content, payload);
    // the same build with no extra CA at all is refused: the certificate is trusted only through the variable
    const refused = await kiln(['build', '--root', root, '--progress=plain', '--no-cache', ctx], { env: { NODE_EXTRA_CA_CERTS: '' } });
    assert.notEqual(refused.code, 0);
    assert.match(refused.stderr, /self[- ]signed|SELF_SIGNED|certificate/i);
  });

  test('node starts without the variable for --version and for build, unless a flag names a registry', async (t) => {
    if (!requireIntegration(t)) return;
    const missing = path.join(tmp, 'no-such-bundle.pem');
    const version = await kiln(['--version'], { env: { NODE_EXTRA_CA_CERTS: missing } });
    assert.equal(version.code, 0);
    assert.doesNotMatch(version.stderr, STARTUP_WARNING);
    const held = await kiln(['build', '--root', root, '-q', plain], { env: { NODE_EXTRA_CA_CERTS: missing } });
    assert.equal(held.code, 0, held.stderr);
    assert.doesNotMatch(held.stderr, STARTUP_WARNING, 'node read NODE_EXTRA_CA_CERTS at start-up');
    // without a socket too: an in-process build that fetches nothing never reads the file
    const other = await newRoot();
    try {
      const quiet = await kiln(['build', '--root', other, '-q', plain], { env: { NODE_EXTRA_CA_CERTS: missing } });
      assert.equal(quiet.code, 0, quiet.stderr);
      assert.doesNotMatch(quiet.stderr, STARTUP_WARNING);
      // flags that name a registry: node reads the variable at start-up as it always did (and warns about the file)
      const read = await kiln(['build', '--root', other, '-q', '--cache-to', `type=local,dest=${path.join(tmp, 'cache')}`, plain], { env: { NODE_EXTRA_CA_CERTS: missing } });
      assert.equal(read.code, 0, read.stderr);
      assert.match(read.stderr, STARTUP_WARNING);
    } finally {
      await cleanup(other);
    }
    const images = await kiln(['images', '--root', root], { env: { NODE_EXTRA_CA_CERTS: missing } });
    assert.match(images.stderr, STARTUP_WARNING, 'commands other than build and --version start as before');
  });
});
