import { canonicalJson, sha256 } from '../oci/index.js';
import type { Op } from '../graph/index.js';

/** Bump when the key's field list or meaning changes: old records then simply miss. */
// v2: COPY/ADD key on one resolution of their sources (hardlinks, xattrs, followed links, archive content, COPY --from
// selector content instead of the stage's whole output)
// v3: build-arg values in a RUN's env enter the key (and the stored inputs) as their digest, never in clear
export const KEY_FORMAT_VERSION = 'kiln-key-v3';

/** The fields of an op that decide its result. Listed explicitly: adding a field to an op does not change keys. */
export function opKeyFields(op: Op): Record<string, unknown> {
  switch (op.type) {
    case 'source':
      return { type: 'source', ref: op.ref, platform: op.platform ?? '' };
    case 'exec':
      return {
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
      };
    case 'copy':
      return {
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
      };
    case 'mkdir':
      return { type: 'mkdir', path: op.path, user: op.user };
    case 'meta':
      return { type: 'meta', change: op.change };
  }
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

export interface KeyInputs {
  version: string;
  /** output identity of the parent filesystem ('' for a source) */
  parent: string;
  op: Record<string, unknown>;
  /** output identities of other vertices read (COPY --from, mounts from) */
  deps: string[];
  /** content checksums (COPY from the context) */
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
