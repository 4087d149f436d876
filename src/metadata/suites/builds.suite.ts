import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { BuildRecord, BuildRepo } from '../builds.js';
import { withRepo, type RepoFactory } from './factory.js';

const build = (id: string, started: number, over: Partial<BuildRecord> = {}): BuildRecord => ({
  id, started, finished: null, status: 'running', target: 'default', context: '/ctx', dockerfile: 'Dockerfile',
  args: { A: '1' }, tags: ['t:1'], imageDigest: null, steps: [], error: null, owner: '123:456', ...over,
});

/** The contract of the builds role (build history). */
export function buildRepoSuite(impl: string, factory: RepoFactory<BuildRepo>): void {
  test(`${impl} builds: record, update the outcome, find by id prefix, list newest first, delete`, () =>
    withRepo(factory, (builds) => {
      builds.putBuild(build('aaaa1111', 1));
      builds.putBuild(build('bbbb2222', 2, { owner: null }));
      assert.deepEqual(builds.listRunningBuilds().map((b) => b.id).sort(), ['aaaa1111', 'bbbb2222']);
      assert.equal(builds.listRunningBuilds().find((b) => b.id === 'aaaa1111')?.owner, '123:456');
      builds.putBuild(build('aaaa1111', 1, { status: 'success', finished: 5, imageDigest: 'sha256:img', steps: [{ name: 'RUN x', cached: true }], target: 'ignored' }));
      const a = builds.getBuild('aaaa');
      assert.ok(a);
      assert.equal(a.id, 'aaaa1111');
      assert.equal(a.status, 'success');
      assert.equal(a.finished, 5);
      assert.equal(a.imageDigest, 'sha256:img');
      assert.deepEqual(a.steps, [{ name: 'RUN x', cached: true }]);
      assert.deepEqual(a.args, { A: '1' });
      assert.deepEqual(a.tags, ['t:1']);
      assert.equal(a.target, 'default', 'what the build was asked stays as first recorded');
      assert.deepEqual(builds.listRunningBuilds().map((b) => b.id), ['bbbb2222']);
      builds.finishBuildRecord({ id: 'bbbb2222', status: 'interrupted', finished: 9, error: 'killed' });
      const b = builds.getBuild('bbbb2222');
      assert.equal(b?.status, 'interrupted');
      assert.equal(b?.error, 'killed');
      assert.equal(b?.owner, null);
      assert.deepEqual(builds.listBuilds().map((x) => x.id), ['bbbb2222', 'aaaa1111']);
      assert.deepEqual(builds.listBuildStatuses(), [{ id: 'bbbb2222', status: 'interrupted' }, { id: 'aaaa1111', status: 'success' }]);
      assert.equal(builds.getBuild('cccc'), undefined);
      builds.deleteBuild('aaaa1111');
      assert.equal(builds.getBuild('aaaa1111'), undefined);
      assert.equal(builds.listBuilds().length, 1);
    }));
}
