import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, promises as fsp } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createVolume, inspectVolume, listVolumes, mergeEnv, parseVolumeSpec, removeVolumes, useVolume, volumesDiskUsage } from './index.js';

describe('kiln run helpers', () => {
  test('-v specs', () => {
    assert.deepEqual(parseVolumeSpec('pkgs:/cache'), { source: 'pkgs', target: '/cache' });
    assert.deepEqual(parseVolumeSpec('/host/dir:/x:ro'), { source: '/host/dir', target: '/x', readonly: true });
    assert.throws(() => parseVolumeSpec('pkgs'), /expected NAME/);
    assert.throws(() => parseVolumeSpec('pkgs:rel'), /absolute/);
    assert.throws(() => parseVolumeSpec('pkgs:/x:zz'), /ro or rw/);
  });

  test('env overrides', () => {
    process.env.KILN_TEST_PASS = 'from-host';
    assert.deepEqual(mergeEnv(['A=1', 'B=2'], ['B=3', 'C=4', 'KILN_TEST_PASS', 'KILN_TEST_UNSET_XYZ']), ['A=1', 'B=3', 'C=4', 'KILN_TEST_PASS=from-host']);
  });

  test('volumes: create, list, inspect, du, in use, rm', async () => {
    const s = mkdtempSync(path.join(tmpdir(), 'kiln-vol-'));
    const v = await createVolume({ stateDir: s, name: 'pkgs' });
    assert.equal(v.mountpoint, path.join(s, 'volumes', 'pkgs', '_data'));
    await assert.rejects(createVolume({ stateDir: s, name: 'pkgs' }), (e: { code?: string }) => e.code === 'ERR_KILN_VOLUME_EXISTS');
    assert.equal((await createVolume({ stateDir: s, name: 'pkgs', ifMissing: true })).createdNow, false);
    await assert.rejects(createVolume({ stateDir: s, name: '../x' }), /invalid volume name/);
    await fsp.writeFile(path.join(v.mountpoint, 'f'), Buffer.alloc(20000));
    const [du] = await volumesDiskUsage({ stateDir: s });
    assert.equal(du!.name, 'pkgs');
    assert.ok(du!.size >= 20000);
    assert.deepEqual((await listVolumes({ stateDir: s })).map((x) => x.name), ['pkgs']);
    const done = await useVolume({ stateDir: s, name: 'pkgs' });
    assert.equal((await inspectVolume({ stateDir: s, name: 'pkgs' })).inUse, true);
    await assert.rejects(removeVolumes({ stateDir: s, names: ['pkgs'] }), (e: { code?: string }) => e.code === 'ERR_KILN_VOLUME_IN_USE');
    await done();
    assert.deepEqual(await removeVolumes({ stateDir: s, names: ['pkgs'] }), ['pkgs']);
    await assert.rejects(inspectVolume({ stateDir: s, name: 'pkgs' }), (e: { code?: string }) => e.code === 'ERR_KILN_VOLUME_NOT_FOUND');
  });
});
