import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { formatRegistryRef, isLoopbackHost, manifestReference, parseRegistryRef } from './ref.js';
import { normalizeAuthKey, parseChallenge, parseRegistryAuthFlag, readDockerAuths } from './auth.js';
import { redactUrl, registryError } from './errors.js';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

describe('registry refs', () => {
  test('bare names are on docker.io under library/', () => {
    assert.deepEqual(parseRegistryRef('busybox'), { host: 'docker.io', repository: 'library/busybox' });
    assert.deepEqual(parseRegistryRef('user/app:1'), { host: 'docker.io', repository: 'user/app', tag: '1' });
  });
  test('a first component with a dot, a port or localhost is a host', () => {
    assert.deepEqual(parseRegistryRef('localhost:5000/team/app:v2'), { host: 'localhost:5000', repository: 'team/app', tag: 'v2' });
    assert.deepEqual(parseRegistryRef('127.0.0.1:5000/app'), { host: '127.0.0.1:5000', repository: 'app' });
    const d = `sha256:${'a'.repeat(64)}`;
    const r = parseRegistryRef(`registry.example.com/app@${d}`);
    assert.equal(r.digest, d);
    assert.equal(manifestReference(r), d);
    assert.equal(formatRegistryRef(r), `registry.example.com/app@${d}`);
    assert.equal(manifestReference(parseRegistryRef('x.io/app')), 'latest');
  });
  test('invalid references are ERR_KILN_ARGUMENT', () => {
    assert.throws(() => parseRegistryRef('x.io/App:1'), { code: 'ERR_KILN_ARGUMENT' });
    assert.throws(() => parseRegistryRef('x.io/app@sha256:12'), { code: 'ERR_KILN_ARGUMENT' });
    assert.throws(() => parseRegistryRef('x.io/app:bad tag'), { code: 'ERR_KILN_ARGUMENT' });
  });
  test('loopback hosts', () => {
    for (const h of ['localhost', 'localhost:5000', '127.0.0.1:5000', '127.8.9.10', '[::1]:5000']) assert.equal(isLoopbackHost(h), true, h);
    for (const h of ['registry.example.com', '10.0.0.1:5000', '128.0.0.1', 'localhost.example.com']) assert.equal(isLoopbackHost(h), false, h);
  });
});

describe('registry auth', () => {
  test('docker config.json: base64 auth, username/password, tokens; keys normalised', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'kiln-dockercfg-'));
    const file = path.join(dir, 'config.json');
    writeFileSync(file, JSON.stringify({
      auths: {
        'https://index.docker.io/v1/': { auth: Buffer.from('hub:pa:ss').toString('base64') },
        'reg.example.com:5000': { username: 'u', password: 'p' },
        'https://tok.example.com/v2/': { identitytoken: 'refresh' },
      },
    }));
    const m = readDockerAuths(file);
    assert.deepEqual(m.get('docker.io'), { username: 'hub', password: 'pa:ss' });
    assert.deepEqual(m.get('reg.example.com:5000'), { username: 'u', password: 'p' });
    assert.deepEqual(m.get('tok.example.com'), { identityToken: 'refresh' });
    assert.equal(readDockerAuths(path.join(dir, 'missing.json')).size, 0);
    writeFileSync(file, '{not json');
    assert.throws(() => readDockerAuths(file), { code: 'ERR_KILN_REGISTRY_AUTH' });
    rmSync(dir, { recursive: true, force: true });
  });
  test('--registry-auth HOST=USER:PASSWORD', () => {
    assert.deepEqual(parseRegistryAuthFlag('https://Reg.example.com/=ci:a:b'), ['reg.example.com', { username: 'ci', password: 'a:b' }]);
    assert.throws(() => parseRegistryAuthFlag('reg.example.com'), { code: 'ERR_KILN_ARGUMENT' });
    assert.equal(normalizeAuthKey('registry-1.docker.io'), 'docker.io');
  });
  test('WWW-Authenticate challenges', () => {
    assert.deepEqual(parseChallenge('Bearer realm="https://auth.example.com/token",service="registry.example.com",scope="repository:a/b:pull,push"'), {
      scheme: 'bearer',
      params: { realm: 'https://auth.example.com/token', service: 'registry.example.com', scope: 'repository:a/b:pull,push' },
    });
    assert.deepEqual(parseChallenge('Basic realm="Registry Realm"'), { scheme: 'basic', params: { realm: 'Registry Realm' } });
    assert.equal(parseChallenge('Negotiate abc'), undefined);
    assert.equal(parseChallenge(null), undefined);
  });
  test('errors never carry credentials', () => {
    assert.equal(redactUrl('https://user:secret@reg.example.com/v2/?token=abc&x=1'), 'https://reg.example.com/v2/?token=***&x=1');
    const e = registryError('ERR_KILN_REGISTRY', 'cannot reach https://bob:hunter2@reg.example.com/v2/app/manifests/1: ECONNREFUSED');
    assert.doesNotMatch(e.message, /hunter2|bob/);
    assert.match(e.message, /https:\/\/reg\.example\.com\/v2\/app\/manifests\/1/);
  });
});
