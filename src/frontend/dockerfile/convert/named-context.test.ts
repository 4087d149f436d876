import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { CopyOp, ExecOp } from '../../../graph/index.js';
import type { ImageConfig } from '../../../oci/index.js';
import { convertDockerfile } from './convert.js';
import type { ConvertOptions } from './types.js';

/** The front end's image lookup: every name is an image with one env var naming it (what the engine passes in). */
function options(text: string, namedContexts: ConvertOptions['namedContexts']): ConvertOptions & { asked: string[] } {
  const asked: string[] = [];
  return {
    text, file: 'Dockerfile', buildArgs: {}, asked,
    ...(namedContexts ? { namedContexts } : {}),
    images: {
      resolve: async (ref) => {
        asked.push(ref);
        const config: ImageConfig = { architecture: 'amd64', os: 'linux', config: { Env: [`FROM_IMAGE=${ref}`] }, rootfs: { type: 'layers', diff_ids: [] } };
        return { manifest: `sha256:${'0'.repeat(64)}`, config, ref };
      },
    },
  };
}

test('a named local context: COPY --from and RUN --mount from read it by name; FROM NAME is its files on an empty image', async () => {
  const o = options('FROM src AS s\nFROM busybox\nCOPY --from=src a /a\nRUN --mount=from=src,target=/m cat /m/a\n', { src: { type: 'local' } });
  const g = await convertDockerfile(o);
  const ops = [...g.vertices.values()].map((v) => v.op);
  const copy = ops.find((op): op is CopyOp => op.type === 'copy' && op.dest === '/a')!;
  assert.equal(copy.from, 'context');
  assert.equal(copy.context, 'src');
  const run = ops.find((op): op is ExecOp => op.type === 'exec')!;
  assert.equal(run.mounts[0]!.context, 'src');
  assert.equal(run.mounts[0]!.fromVertex, undefined);
  assert.deepEqual(o.asked, ['busybox'], 'src is never looked up as an image');
  assert.equal(g.warnings, undefined);
});

test('an image context replaces FROM NAME (matched as image names are), COPY --from=NAME and a stage AS NAME', async () => {
  const text = 'FROM busybox AS tools\nRUN exit 3\nFROM docker.io/library/alpine:latest\nCOPY --from=tools /x /x\n';
  const o = options(text, { alpine: { type: 'image', ref: 'pinned:1' }, tools: { type: 'image', ref: 'toolbox:2' } });
  const g = await convertDockerfile(o);
  assert.deepEqual(o.asked.sort(), ['pinned:1', 'toolbox:2']);
  assert.equal([...g.vertices.values()].some((v) => v.op.type === 'exec'), false, 'the replaced stage is not built');
  assert.ok(g.target.config.config.Env?.includes('FROM_IMAGE=pinned:1'));
});

test('a named context the Dockerfile never uses is a warning', async () => {
  const g = await convertDockerfile(options('FROM busybox\n', { spare: { type: 'local' }, other: { type: 'image', ref: 'x:1' } }));
  assert.deepEqual(g.warnings, ['[Warning] build contexts [spare, other] were not used: no FROM, COPY --from or RUN --mount from= names them']);
});
