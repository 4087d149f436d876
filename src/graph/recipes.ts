import { sha256 } from '../oci/index.js';
import type { CopyOp, ExecOp, MetaOp, MkdirOp, Op, SourceOp } from './types.js';

/**
 * What one op type states about its own cache key and definition (BuildKit's CacheMap): the solver combines these
 * without knowing op types. Content checksums of the paths a step reads come from the op runner at solve time.
 */
export interface OpRecipe<O extends Op = Op> {
  /** the op's cache digest fields, listed explicitly: adding a field to an op does not change keys */
  keyFields(op: O): Record<string, unknown>;
  /** the op with every vertex reference replaced by `ref(vertex)` (the input's definition digest) */
  definition(op: O, ref: (vertex: string) => string): Record<string, unknown>;
  /**
   * Dependencies that enter the key through a content checksum of the paths read (a selector), not through their
   * whole output: a change elsewhere in them keeps the step cached.
   */
  selectorDeps(op: O): string[];
  /** false when the output does not depend on the parent tree (the key then leaves the parent out) */
  readsParent(op: O): boolean;
  /** the step writes a layer (its mtimes are clamped to SOURCE_DATE_EPOCH, so the epoch enters its key) */
  writesLayer: boolean;
  /** resolved by the runner (an image or scratch), never executed */
  isSource: boolean;
}

const source: OpRecipe<SourceOp> = {
  keyFields: (op) => ({ type: 'source', ref: op.ref, platform: op.platform ?? '' }),
  definition: (op) => ({ type: 'source', ref: op.ref, platform: op.platform ?? '' }),
  selectorDeps: () => [],
  readsParent: () => false,
  writesLayer: false,
  isSource: true,
};

const exec: OpRecipe<ExecOp> = {
  keyFields: (op) => ({
    type: 'exec',
    args: op.args,
    env: argValuesDigested(op.env, op.argEnv),
    cwd: op.cwd,
    user: op.user,
    network: op.network,
    security: op.security ?? 'sandbox',
    mounts: op.mounts.map((m) => ({
      type: m.type,
      target: m.target,
      // cache and secret contents never enter the key; their ids and placement do
      id: m.id ?? '',
      source: m.source ?? '',
      readonly: m.readonly ?? false,
      sharing: m.sharing ?? '',
      mode: m.mode ?? null,
      uid: m.uid ?? null,
      gid: m.gid ?? null,
      size: m.size ?? null,
      env: m.env ?? '',
      from: m.fromVertex ? 'vertex' : '',
    })),
  }),
  definition: (op, ref) => ({ ...op, mounts: op.mounts.map((m) => (m.fromVertex === undefined ? m : { ...m, fromVertex: ref(m.fromVertex) })) }),
  selectorDeps: () => [],
  readsParent: () => true,
  writesLayer: true,
  isSource: false,
};

const copy: OpRecipe<CopyOp> = {
  keyFields: (op) => ({
    type: op.add ? 'add' : 'copy',
    from: op.from === 'context' ? 'context' : 'vertex',
    sources: op.sources,
    inline: op.inline,
    dest: op.dest,
    workdir: op.workdir,
    chown: op.chown,
    chmod: op.chmod,
    excludes: op.excludes,
    parents: op.parents,
    link: op.link,
    checksum: op.checksum,
  }),
  definition: (op, ref) => ({ ...op, from: op.from === 'context' ? 'context' : { vertex: ref(op.from.vertex) } }),
  // COPY --from keys on the content of the copied paths only (the runner's selector checksum)
  selectorDeps: (op) => (op.from === 'context' ? [] : [op.from.vertex]),
  // COPY --link builds its layer on an empty tree, unless a named --chown must be looked up in the parent's passwd
  readsParent: (op) => !op.link || !isNumericOwner(op.chown),
  writesLayer: true,
  isSource: false,
};

const mkdir: OpRecipe<MkdirOp> = {
  keyFields: (op) => ({ type: 'mkdir', path: op.path, user: op.user }),
  definition: (op) => ({ ...op }),
  selectorDeps: () => [],
  readsParent: () => true,
  writesLayer: true,
  isSource: false,
};

const meta: OpRecipe<MetaOp> = {
  keyFields: (op) => ({ type: 'meta', change: op.change }),
  definition: (op) => ({ ...op }),
  selectorDeps: () => [],
  readsParent: () => true,
  writesLayer: false,
  isSource: false,
};

const RECIPES: { [T in Op['type']]: OpRecipe<Extract<Op, { type: T }>> } = { source, exec, copy, mkdir, meta };

/**
 * The recipe of an op, bound to it: what the solver asks instead of looking at the op's type.
 *
 * @example
 * recipeOf({ type: 'mkdir', path: '/app', user: '' }).writesLayer // true
 */
export function recipeOf(op: Op): BoundRecipe {
  const r = RECIPES[op.type] as OpRecipe;
  return {
    keyFields: () => r.keyFields(op),
    definition: (ref) => r.definition(op, ref),
    selectorDeps: () => r.selectorDeps(op),
    readsParent: () => r.readsParent(op),
    writesLayer: r.writesLayer,
    isSource: r.isSource,
  };
}

/** An {@link OpRecipe} with its op applied. */
export interface BoundRecipe {
  keyFields(): Record<string, unknown>;
  definition(ref: (vertex: string) => string): Record<string, unknown>;
  selectorDeps(): string[];
  readsParent(): boolean;
  writesLayer: boolean;
  isSource: boolean;
}

/** `--chown` given as numbers (`1000` or `1000:1000`), or not at all: nothing to resolve in the parent tree. */
export function isNumericOwner(chown: string): boolean {
  if (chown === '') return true;
  const parts = chown.split(':');
  return parts.length <= 2 && parts.every((p) => p !== '' && [...p].every((ch) => ch >= '0' && ch <= '9'));
}

/** `NAME=value` entries of build args become `NAME=sha256:<digest of value>`: the key is as precise, the record keeps no secret. */
function argValuesDigested(env: string[], argNames: string[] | undefined): string[] {
  if (!argNames || argNames.length === 0) return env;
  const names = new Set(argNames);
  return env.map((e) => {
    const eq = e.indexOf('=');
    const name = eq < 0 ? e : e.slice(0, eq);
    return names.has(name) ? `${name}=${sha256(e.slice(eq + 1))}` : e;
  });
}
