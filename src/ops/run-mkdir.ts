import { promises as fsp } from 'node:fs';
import path from 'node:path';
import type { MkdirOp } from '../graph/index.js';
import type { RunContext } from '../solver/index.js';
import { commitStep, type OpEnv, type StepOutput } from './op-env.js';

/** WORKDIR's directory (mkdir -p over the parent's layers). */
export async function runMkdir(env: OpEnv, op: MkdirOp, ctx: RunContext): Promise<StepOutput> {
  const snap = await env.o.cache.mount(ctx.parent?.layers ?? []);
  try {
    await mkdirInside(snap.mountpoint, op.path);
    return await commitStep(env, snap, ctx.signal);
  } catch (err) {
    await snap.release();
    throw err;
  }
}

/** mkdir -p inside a root, resolving symlinks within the root. */
async function mkdirInside(root: string, p: string): Promise<void> {
  let cur = root;
  for (const seg of p.split('/').filter((s) => s && s !== '.')) {
    const next = path.join(cur, seg);
    let st;
    try {
      st = await fsp.lstat(next);
    } catch {
      await fsp.mkdir(next, { mode: 0o755 });
      cur = next;
      continue;
    }
    if (st.isSymbolicLink()) {
      const target = await fsp.readlink(next);
      const resolved = target.startsWith('/') ? path.join(root, target) : path.join(cur, target);
      const rel = path.relative(root, resolved);
      cur = rel.startsWith('..') ? root : path.join(root, rel);
      await mkdirInside(root, path.relative(root, cur));
      continue;
    }
    cur = next;
  }
}
