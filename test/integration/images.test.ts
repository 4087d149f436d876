import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { busyboxRootfsTar, cleanup, kilnSync, newContext, newRoot, build, readImage, requireIntegration } from '../helpers/kiln.js';

test('kiln import is reproducible across state directories and sets Docker\'s default PATH', async (t) => {
  if (!requireIntegration(t)) return;
  const a = mkdtempSync(path.join(tmpdir(), 'kiln-imp-a-'));
  const b = mkdtempSync(path.join(tmpdir(), 'kiln-imp-b-'));
  try {
    const ra = kilnSync(['import', '--root', a, busyboxRootfsTar(), 'base:1']);
    const rb = kilnSync(['--root', b, 'import', busyboxRootfsTar(), 'base:1']);
    assert.equal(ra.code, 0, ra.stderr);
    assert.equal(rb.code, 0, rb.stderr);
    assert.equal(ra.stdout.trim(), rb.stdout.trim());
    const { config } = await readImage(a, ra.stdout.trim());
    assert.deepEqual(config.config.Env, ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin']);
    const list = kilnSync(['images', '--root', a, '--format', 'json']);
    assert.deepEqual((JSON.parse(list.stdout) as Array<{ name: string }>).map((i) => i.name), ['base:1']);
  } finally {
    await cleanup(a, b);
  }
});

test('save (oci and docker) and load round-trip; tag and rmi', async (t) => {
  if (!requireIntegration(t)) return;
  const root = await newRoot();
  const other = mkdtempSync(path.join(tmpdir(), 'kiln-load-'));
  const ctx = await newContext({ Dockerfile: 'FROM busybox\nRUN echo saved > /saved\n' });
  try {
    const r = await build(root, ctx, ['-t', 'saved:1']);
    assert.equal(r.code, 0, r.stderr);
    const digest = r.meta['containerimage.digest'];
    const ociTar = path.join(other, 'img-oci.tar');
    const dockerTar = path.join(other, 'img-docker.tar');
    assert.equal(kilnSync(['save', '--root', root, 'saved:1', '-o', ociTar]).code, 0);
    assert.equal(kilnSync(['save', '--root', root, 'saved:1', '-o', dockerTar, '--format', 'docker']).code, 0);
    const insp = spawnSync('skopeo', ['inspect', `docker-archive:${dockerTar}`], { encoding: 'utf8' });
    assert.equal(insp.status, 0, insp.stderr);

    const fresh = path.join(other, 'root');
    const l1 = kilnSync(['load', '--root', fresh, ociTar]);
    assert.equal(l1.code, 0, l1.stderr);
    const imgs = JSON.parse(kilnSync(['images', '--root', fresh, '--format', 'json']).stdout) as Array<{ name: string; digest: string }>;
    assert.equal(imgs.find((i) => i.name === 'saved:1')?.digest, digest);
    const l2 = kilnSync(['load', '--root', fresh, dockerTar]);
    assert.equal(l2.code, 0, l2.stderr);
    // the loaded image is a usable base
    const ctx2 = await newContext({ Dockerfile: 'FROM saved:1\nRUN cat /saved\n' });
    const r2 = await build(fresh, ctx2);
    assert.equal(r2.code, 0, r2.stderr);
    assert.match(r2.stderr, /saved/);
    assert.equal(kilnSync(['tag', '--root', fresh, 'saved:1', 'again:2']).code, 0);
    assert.equal(kilnSync(['rmi', '--root', fresh, 'again:2']).code, 0);
    const rmiMissing = kilnSync(['rmi', '--root', fresh, 'again:2']);
    assert.notEqual(rmiMissing.code, 0);
    assert.match(rmiMissing.stderr, /not in the local store/);
    await cleanup(ctx2);
  } finally {
    await cleanup(root, other, ctx);
  }
});
