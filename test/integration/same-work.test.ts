/**
 * Identical work reached twice in one build runs once (the solver merges vertices by definition digest), end to end
 * with the real `bin/kiln`: two stages with the same FROM and RUN, each writing a fresh random id, read by a third.
 */
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { build, cleanup, imageFiles, integrationBlocker, newContext, newRoot, requireIntegration } from '../helpers/kiln.js';

describe('kiln build: the same work twice', { concurrency: false }, () => {
  let root = '';
  const dirs: string[] = [];
  before(async () => {
    if (integrationBlocker()) return;
    root = await newRoot();
  });
  after(async () => {
    if (root) await cleanup(root, ...dirs);
  });

  test('two stages with the same FROM and RUN run the RUN once; a different RUN still runs', async (t) => {
    if (!requireIntegration(t)) return;
    const dir = await newContext({
      Dockerfile: `FROM busybox AS one
RUN cat /proc/sys/kernel/random/uuid > /id
FROM busybox AS two
RUN cat /proc/sys/kernel/random/uuid > /id
FROM busybox AS three
RUN cat /proc/sys/kernel/random/uuid > /id && echo three >> /id
FROM scratch
COPY --from=one /id /one
COPY --from=two /id /two
COPY --from=three /id /three
`,
    });
    dirs.push(dir);
    const r = await build(root, dir);
    assert.equal(r.code, 0, r.stderr);
    const files = await imageFiles(root, r.meta['containerimage.digest']);
    const [one, two, three] = ['one', 'two', 'three'].map((f) => files.get(f)?.content ?? '');
    assert.match(one!, /^[0-9a-f-]{36}\n$/);
    assert.equal(two, one, 'stage two reused the RUN of stage one');
    assert.notEqual(three!.split('\n')[0], one!.trim(), 'stage three ran its own RUN');
    const runs = r.meta['kiln.steps'].filter((s) => s.name.includes('RUN cat'));
    assert.equal(runs.length, 3);
    assert.equal(runs.filter((s) => !s.cached).length, 2, JSON.stringify(runs));
  });
});
