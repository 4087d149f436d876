/**
 * The repository suite of the service store (src/service ServiceStore): one function, run against every
 * implementation (SQLite and PostgreSQL, test/integration/pg-store.test.ts). It asserts only what the interface
 * promises, so both must pass it unchanged.
 */
import assert from 'node:assert/strict';
import type { ServiceStore } from '../../src/service/index.js';

export async function serviceStoreSuite(store: ServiceStore): Promise<void> {
  // teams
  const before = Date.now();
  const a = await store.createTeam('alpha', { concurrentBuilds: 2 });
  const b = await store.createTeam('beta');
  assert.match(a.id, /^t[0-9a-f]{12}$/);
  assert.ok(a.created >= before - 1000 && a.created <= Date.now() + 1000, 'created is epoch milliseconds');
  await assert.rejects(store.createTeam('alpha'), (e: Error & { code?: string; kind?: string }) => e.code === 'ERR_KILN_SERVICE_EXISTS' && /team "alpha" already exists/.test(e.message));
  await assert.rejects(store.createTeam('Bad Name'), (e: Error & { code?: string }) => e.code === 'ERR_KILN_ARGUMENT' && /must be 1-63 lowercase letters/.test(e.message));
  assert.deepEqual((await store.listTeams()).map((x) => x.name), ['alpha', 'beta']);
  assert.deepEqual((await store.getTeamByName('alpha'))?.limits, { concurrentBuilds: 2 });
  assert.equal((await store.getTeamByName('alpha'))?.id, a.id);
  await store.setTeamLimits(b.id, { concurrentBuilds: 1, storedBytes: 1e9 });
  assert.deepEqual((await store.getTeam(b.id))?.limits, { concurrentBuilds: 1, storedBytes: 1e9 });
  assert.equal(await store.getTeam('nope'), undefined);
  assert.equal(await store.getTeamByName('nope'), undefined);

  // keys: a revoked key no longer authenticates
  const k = await store.createKey(a.id);
  assert.match(k.key, new RegExp(`^kiln_${k.id}_[A-Za-z0-9_-]{32}$`));
  assert.equal((await store.authenticate(k.key))?.name, 'alpha');
  assert.equal(await store.authenticate(`${k.key}x`), undefined);
  const kb = await store.createKey(b.id);
  assert.deepEqual((await store.listKeys(a.id)).map((x) => [x.id, x.teamId, x.team, x.revoked]), [[k.id, a.id, 'alpha', null]]);
  assert.deepEqual((await store.listKeys()).map((x) => x.id).sort(), [k.id, kb.id].sort());
  assert.equal(await store.revokeKey(k.id), true);
  assert.equal(await store.revokeKey(k.id), false, 'already revoked');
  assert.equal(await store.revokeKey('knope'), false);
  assert.equal(await store.authenticate(k.key), undefined);
  assert.equal(typeof (await store.listKeys(a.id))[0]!.revoked, 'number');
  assert.equal((await store.authenticate(kb.key))?.name, 'beta');

  // builds
  await store.createBuild({ id: 'b1', teamId: a.id, request: { dockerfile: 'FROM busybox', context: [] }, template: 'py' });
  await store.createBuild({ id: 'b2', teamId: a.id, request: {}, template: 'py' });
  await store.createBuild({ id: 'b3', teamId: b.id, request: {}, template: null });
  assert.deepEqual((await store.listBuilds(['queued'])).map((x) => x.id), ['b1', 'b2', 'b3']);
  assert.deepEqual(await store.listBuilds([]), []);
  const queued = await store.getBuild(a.id, 'b1');
  assert.deepEqual([queued?.status, queued?.started, queued?.finished, queued?.result, queued?.error, queued?.template], ['queued', null, null, null, null, 'py']);
  await store.setBuildRunning('b1', 'worker-a');
  const running = await store.getBuild(a.id, 'b1');
  assert.equal(running?.status, 'running');
  assert.equal(typeof running?.started, 'number');
  assert.equal(running?.finished, null);
  assert.equal(await store.getBuild(b.id, 'b1'), undefined, "another team's build is not found");
  await store.finishBuild('b1', 'success', { digest: 'sha256:aa', steps: [{ name: 'RUN x', cached: true }] }, null);
  const done = await store.getBuild(a.id, 'b1');
  assert.deepEqual([done?.status, done?.result, done?.error, done?.request], ['success', { digest: 'sha256:aa', steps: [{ name: 'RUN x', cached: true }] }, null, { dockerfile: 'FROM busybox', context: [] }]);
  assert.ok(done!.finished! >= done!.started!);
  await store.finishBuild('b2', 'failed', null, 'RUN exited 1');
  const failed = await store.getBuild(a.id, 'b2');
  assert.deepEqual([failed?.status, failed?.result, failed?.error], ['failed', null, 'RUN exited 1']);
  assert.equal((await store.lastBuildOf(a.id, 'py'))?.id, 'b2');
  assert.equal(await store.lastBuildOf(b.id, 'py'), undefined);
  assert.deepEqual((await store.listBuilds(['success', 'failed'])).map((x) => x.id), ['b1', 'b2']);
  assert.deepEqual((await store.listBuilds(['queued'])).map((x) => [x.id, x.teamId]), [['b3', b.id]]);
  // a build's sealed base credentials are kept while it may run and dropped when it finishes
  const sealed = { alg: 'A256GCM', iv: 'aXY=', tag: 'dGFn', data: 'ZGF0YQ==' };
  const withCreds = { template: { base: { type: 'image', ref: 'reg/private:1', sealedCredentials: sealed }, steps: [] }, context: [] };
  await store.createBuild({ id: 'b4', teamId: a.id, request: withCreds, template: null, createdByKey: k.id });
  assert.equal((await store.getBuild(a.id, 'b4'))?.startedBy, k.id, 'who started it');
  assert.equal((await store.getBuild(a.id, 'b1'))?.startedBy, null, 'none recorded');
  assert.equal((await store.listBuilds(['queued'])).find((x) => x.id === 'b4')?.startedBy, k.id);
  assert.deepEqual((await store.getBuild(a.id, 'b4'))?.request, withCreds);
  await store.setBuildRunning('b4');
  assert.deepEqual((await store.getBuild(a.id, 'b4'))?.request, withCreds, 'kept while running (a retry on another worker needs them)');
  await store.finishBuild('b4', 'failed', null, 'x');
  assert.deepEqual((await store.getBuild(a.id, 'b4'))?.request, { template: { base: { type: 'image', ref: 'reg/private:1' }, steps: [] }, context: [] }, 'dropped at the end, the rest kept');

  // templates: name:tag rows, re-tagging moves the tag
  await store.putTemplate({ teamId: a.id, name: 'py', tag: 'latest', digest: 'sha256:aa', buildId: 'b1' });
  await store.putTemplate({ teamId: a.id, name: 'py', tag: 'v1', digest: 'sha256:aa', buildId: 'b1' });
  await store.putTemplate({ teamId: a.id, name: 'node', tag: 'latest', digest: 'sha256:cc', buildId: 'b1' });
  await store.putTemplate({ teamId: a.id, name: 'py', tag: 'latest', digest: 'sha256:bb', buildId: 'b2' });
  const tpl = await store.listTemplates(a.id);
  assert.deepEqual(tpl.map((x) => `${x.teamId === a.id}:${x.name}:${x.tag}=${x.digest}@${x.buildId}`), ['true:node:latest=sha256:cc@b1', 'true:py:latest=sha256:bb@b2', 'true:py:v1=sha256:aa@b1']);
  assert.ok(tpl[1]!.updated >= tpl[1]!.created);
  assert.deepEqual((await store.listTemplates(a.id, 'py')).map((x) => x.tag), ['latest', 'v1']);
  assert.deepEqual(await store.listTemplates(b.id), [], "another team's templates are not listed");
  assert.equal(await store.deleteTemplate(b.id, 'py'), 0, "another team cannot delete them");
  assert.equal(await store.deleteTemplate(a.id, 'py', 'v1'), 1);
  assert.equal(await store.deleteTemplate(a.id, 'py'), 1);
  assert.equal(await store.deleteTemplate(a.id, 'py'), 0);
  assert.deepEqual((await store.listTemplates(a.id)).map((x) => x.name), ['node']);
  await store.putTemplate({ teamId: a.id, name: 'py', tag: 'again', digest: 'sha256:dd', buildId: 'b2' });
  assert.deepEqual((await store.listTemplates(a.id, 'py')).map((x) => x.tag), ['again'], 'a deleted name can be used again');

  // events: the JSON text comes back byte for byte, in order, after a sequence number
  const ev = ['{"type":"step","name":"RUN x",  "cached":true}', '{"b":1,"a":2}', '{"type":"log","line":"é\\u0000"}'];
  for (const [i, data] of ev.entries()) await store.appendEvent('b1', i + 1, data);
  await assert.rejects(store.appendEvent('b1', 2, '{}'), 'a sequence number is used once');
  await assert.rejects(store.appendEvent('b1', 9, 'not json'), 'an event is JSON');
  assert.deepEqual(await store.eventsAfter('b1', 1), [{ seq: 2, data: ev[1] }, { seq: 3, data: ev[2] }]);
  assert.deepEqual(await store.eventsAfter('b1', 3), []);
  assert.equal(await store.lastEventSeq('b1'), 3);
  assert.equal(await store.lastEventSeq('b2'), 0);

  // usage
  await store.addUsage({ teamId: a.id, kind: 'build_seconds', quantity: 12.5, buildId: 'b1' });
  await store.addUsage({ teamId: a.id, kind: 'build_seconds', quantity: 2 });
  await assert.rejects(store.addUsage({ teamId: a.id, kind: 'build_seconds', quantity: -1 }), /0 or more/);
  assert.equal(await store.usageOf(a.id, 'build_seconds'), 14.5);
  assert.equal(await store.usageOf(a.id, 'build_seconds', Date.now() + 60_000), 0);
  assert.equal(await store.usageOf(a.id, 'bytes_pushed'), 0);
  assert.equal(await store.usageOf(b.id, 'build_seconds'), 0);
  await store.addUsage({ teamId: a.id, kind: 'upload_bytes', quantity: 300 });
  await store.addUsage({ teamId: a.id, kind: 'upload_bytes', quantity: 45 });
  assert.deepEqual(await store.usageByKind(a.id), { build_seconds: 14.5, upload_bytes: 345 });
  assert.deepEqual(await store.usageByKind(a.id, Date.now() + 60_000), {});
  assert.deepEqual(await store.usageByKind(b.id), {});
  await store.addUsage({ teamId: a.id, kind: 'cache_bytes_pushed', quantity: 100, buildId: 'b1' });
  await store.addUsage({ teamId: a.id, kind: 'cache_bytes_pushed', quantity: 20, buildId: 'b1' });
  await store.addUsage({ teamId: a.id, kind: 'cache_bytes_pushed', quantity: 7, buildId: 'b2' });
  const timeline = await store.usageTimeline(a.id, 'cache_bytes_pushed');
  assert.deepEqual(timeline.map((x) => [x.buildId, x.quantity]), [['b1', 120], ['b2', 7]], 'per build, oldest first');
  assert.ok(timeline[0]!.at <= timeline[1]!.at && timeline[0]!.at >= before);
  assert.deepEqual(await store.usageTimeline(b.id, 'cache_bytes_pushed'), []);
}
