import { canonicalJson, sha256 } from '../oci/index.js';
import { recipeOf, type Op } from '../graph/index.js';

/** Bump when the key's field list or meaning changes: old records then simply miss. */
// v2: COPY/ADD key on one resolution of their sources (hardlinks, xattrs, followed links, archive content, COPY --from
// selector content instead of the stage's whole output)
// v3: build-arg values in a RUN's env enter the key (and the stored inputs) as their digest, never in clear
export const KEY_FORMAT_VERSION = 'kiln-key-v3';

/** The fields of an op that decide its result: the op type's own recipe (graph's recipeOf) states them. */
export function opKeyFields(op: Op): Record<string, unknown> {
  return recipeOf(op).keyFields();
}

export interface KeyInputs {
  version: string;
  /** output identity of the parent filesystem ('' for a source) */
  parent: string;
  op: Record<string, unknown>;
  /** output identities of other vertices read (COPY --from, mounts from) */
  deps: string[];
  /** content checksums (COPY from the context, COPY --from's selector, bind mounts; SOURCE_DATE_EPOCH folded in) */
  content: Record<string, unknown>;
}

export function computeKey(inputs: KeyInputs): string {
  const { content, ...rest } = inputs;
  // content may carry per-file detail for explaining misses; only its digest enters the key
  const contentDigest = typeof content.digest === 'string' ? content.digest : canonicalJson(content);
  return sha256(canonicalJson({ ...rest, content: contentDigest }));
}

/** Output identity after a step: unchanged for steps without a layer, else parent + the layer's content. */
export function nextOutputId(parentOutput: string, contentId: string | null): string {
  if (contentId === null) return parentOutput;
  return sha256(`${parentOutput}\n${contentId}`);
}

/**
 * With SOURCE_DATE_EPOCH a layer's mtimes are clamped to it, so a layer-writing step's key includes the epoch: a layer
 * built without (or with another) epoch is not reused. Folded into the content digest (the key format of v2).
 */
export function withEpoch(content: Record<string, unknown>, epoch: number): Record<string, unknown> {
  const base = typeof content.digest === 'string' ? content.digest : canonicalJson(content);
  return { ...content, sourceDateEpoch: epoch, digest: sha256(`${base}\nSOURCE_DATE_EPOCH=${epoch}`) };
}
