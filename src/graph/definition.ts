import { canonicalJson, sha256 } from '../oci/index.js';
import { recipeOf } from './recipes.js';
import type { Vertex } from './types.js';

/** Bump when the definition encoding changes (definitions live only within one solve; nothing stores them). */
const DEFINITION_VERSION = 'kiln-def-v1';

/**
 * The definition digest of each vertex of `order` (dependency order: inputs before the vertices that read them): a
 * digest of a canonical encoding of the op, with vertex references replaced by their inputs' definition digests,
 * and of the parent's and dependencies' definitions. Names, stages and source locations are left out, so the same
 * work reached twice (two stages with the same FROM and RUN) has one definition and is solved once.
 * It is not a cache key: a definition names the work, the key names its inputs' content.
 */
export function definitionDigests(vertices: Map<string, Vertex>, order: readonly string[]): Map<string, string> {
  const defs = new Map<string, string>();
  const ref = (id: string): string => {
    const d = defs.get(id);
    if (d === undefined) throw new Error(`vertex ${id} is used before its definition (order is not a dependency order)`);
    return d;
  };
  for (const id of order) {
    const v = vertices.get(id);
    if (!v) throw new Error(`graph has no vertex ${id}`);
    defs.set(id, sha256(canonicalJson({
      version: DEFINITION_VERSION,
      op: recipeOf(v.op).definition(ref),
      parent: v.parent === undefined ? '' : ref(v.parent),
      deps: v.deps.map(ref),
      noCache: v.noCache === true,
    })));
  }
  return defs;
}
