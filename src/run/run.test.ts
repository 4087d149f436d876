import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, promises as fsp } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { BuildError } from '../errors/index.js';
import {
  createContainerRecord,
  createVolume,
  exitStatusOf,
  findContainer,
  inspectVolume,
  listContainers,
  listVolumes,
  mergeEnv,
  parsePublish,
  parseVolumeSpec,
  removeVolumes,
  useVolume,
  volumesDiskUsage,
  type ContainerConfig,
} from './index.js';
import { currentState, removeContainerFiles, writeContainerRecord } from './containers.js';

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

  test('-p specs, as docker run takes them', () => {
    assert.deepEqual(parsePublish('8080:80'), { hostPort: 8080, containerPort: 80, protocol: 'tcp' });
    assert.deepEqual(parsePublish('127.0.0.1:53:5353/udp'), { hostIp: '127.0.0.1', hostPort: 53, containerPort: 5353, protocol: 'udp' });
    assert.deepEqual(parsePublish('[::1]:8080:80/tcp'), { hostIp: '::1', hostPort: 8080, containerPort: 80, protocol: 'tcp' });
    assert.throws(() => parsePublish('80'), /a host port is needed/);
    assert.throws(() => parsePublish('8080:80/sctp'), /not a protocol/);
    assert.throws(() => parsePublish('70000:80'), /host port is not a port/);
    assert.throws(() => parsePublish('8080:x'), /container port is not a port/);
    assert.throws(() => parsePublish('nohost:8080:80'), /not an IP address/);
  });

  test('exit statuses of failures, as docker run gives them', () => {
    assert.equal(exitStatusOf(new BuildError('ERR_KILN_EXEC_START', 'could not start "x": exec: "x": executable file not found in $PATH')), 127);
    assert.equal(exitStatusOf(new BuildError('ERR_KILN_EXEC_START', 'could not start "/etc": exec: "/etc": permission denied')), 126);
    assert.equal(exitStatusOf(new BuildError('ERR_KILN_IMAGE_NOT_FOUND', 'image "x" is not in the local store')), 125);
    assert.equal(exitStatusOf(new Error('anything')), 125);
  });

  test('container records: names are unique, found by name, id or prefix; a dead supervisor means exited (255)', async () => {
    const root = mkdtempSync(path.join(tmpdir(), 'kiln-ctr-'));
    const config: ContainerConfig = { image: 'busybox', cmd: ['true'], env: [], network: 'host', volumes: [], tty: false, interactive: false, portForwards: [] };
    const a = await createContainerRecord({ root, name: 'web', config, detached: true, autoRemove: false });
    await assert.rejects(createContainerRecord({ root, name: 'web', config, detached: true, autoRemove: false }), (e: { code?: string }) => e.code === 'ERR_KILN_CONTAINER_NAME_IN_USE');
    await assert.rejects(createContainerRecord({ root, name: '../x', config, detached: true, autoRemove: false }), /a name is letters/);
    const b = await createContainerRecord({ root, config, detached: false, autoRemove: true });
    assert.match(b.name, /^[a-z]+_[a-z]+$/);
    assert.equal((await findContainer(root, 'web')).id, a.id);
    assert.equal((await findContainer(root, a.id.slice(0, 10))).name, 'web');
    assert.equal((await findContainer(root, b.name)).id, b.id);
    await assert.rejects(findContainer(root, 'nope'), (e: { code?: string }) => e.code === 'ERR_KILN_CONTAINER_NOT_FOUND');
    assert.equal((await listContainers(root)).length, 2);
    // this process supervises both; a record whose supervisor is gone counts as exited
    assert.equal(currentState(a).state, 'created');
    const lost = currentState({ ...a, state: 'running', supervisor: { pid: 2 ** 22 + 1, startTime: '1' } });
    assert.equal(lost.state, 'exited');
    assert.equal(lost.exitCode, 255);
    await writeContainerRecord(root, { ...a, state: 'exited', exitCode: 0 });
    assert.equal((await findContainer(root, 'web')).exitCode, 0);
    await removeContainerFiles(root, a);
    await assert.rejects(findContainer(root, 'web'), /no such container/);
    // the name is free again
    assert.equal((await createContainerRecord({ root, name: 'web', config, detached: true, autoRemove: false })).name, 'web');
    // a name whose record vanished (a crash between rm's two steps) is free too
    await fsp.rm(path.join(root, 'containers', (await findContainer(root, 'web')).id), { recursive: true });
    assert.equal((await createContainerRecord({ root, name: 'web', config, detached: true, autoRemove: false })).name, 'web');
    await fsp.rm(root, { recursive: true, force: true });
  });
});
