import { whileWriting } from '../errors/index.js';
import type { OpRunner } from '../solver/index.js';
import type { OpsOptions } from './types.js';
import { bindMountContentInputs } from './exec-mounts.js';
import type { OpEnv } from './op-env.js';
import { runExec } from './run-exec.js';
import { copyContentInputs, runCopy } from './run-copy.js';
import { runMkdir } from './run-mkdir.js';

/**
 * Executes graph vertices for real: each op kind in its own file (run-exec, run-copy, run-mkdir); layers, snapshots and
 * mounts go through the cache part (`o.cache`).
 */
export function createOpRunner(o: OpsOptions): OpRunner {
  const env: OpEnv = { o, resolvedSources: new Map(), disk: { used: 0 } };
  return {
    async resolveSource(v) {
      if (v.op.type !== 'source') throw new Error('not a source');
      if (v.op.ref === 'scratch') return { manifest: 'scratch', layers: [] };
      const img = await o.loadImage(v.op.ref);
      return { manifest: img.manifestDigest, layers: img.config.rootfs.diff_ids };
    },
    async contentInputs(v, ctx) {
      if (v.op.type === 'exec') return bindMountContentInputs({ o, op: v.op, signal: ctx.signal, ...(v.location ? { location: v.location } : {}) });
      return v.op.type === 'copy' ? copyContentInputs(env, v, v.op, ctx) : {};
    },
    async execute(v, ctx) {
      try {
        switch (v.op.type) {
          case 'exec':
            return await runExec(env, v, v.op, ctx);
          case 'copy':
            return await runCopy(env, v, v.op, ctx);
          case 'mkdir':
            return await runMkdir(env, v.op, ctx);
          case 'meta':
            return null;
          case 'source':
            throw new Error('source vertices are resolved, not executed');
        }
      } catch (err) {
        // a full disk anywhere in a step (snapshot, copy, layer, record) is one sentence naming the step
        throw whileWriting(err, { what: `the output of ${JSON.stringify(v.name)}`, where: o.stateDir });
      }
    },
    async layerUsable(diffId) {
      return o.cache.usable(diffId);
    },
  };
}
