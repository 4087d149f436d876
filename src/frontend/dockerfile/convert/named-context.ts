import { DEFAULT_PATH, localImageName } from '../../../oci/index.js';
import type { BuildContext, StageState } from './context.js';
import type { NamedContext } from './types.js';
import type { Stage } from '../instructions/index.js';

/**
 * The name a `--build-context` and a FROM / `--from` reference are matched by, as BuildKit does: the short image
 * form without `:latest` (`docker.io/library/alpine:latest` and `alpine` are the same name).
 */
function contextKey(name: string): string {
  return localImageName(name).replace(/:latest$/, '');
}

/** Whether a named context is given under `ref`'s name (nothing marked used). */
export function hasNamedContext(contexts: Record<string, NamedContext> | undefined, ref: string): boolean {
  const key = contextKey(ref);
  return Object.keys(contexts ?? {}).some((n) => contextKey(n) === key);
}

/** The named context `ref` stands for (marked used), or undefined when none was given under that name. */
export function namedContext(build: BuildContext, ref: string): { name: string; context: NamedContext } | undefined {
  const all = build.opts.namedContexts;
  if (!all) return undefined;
  const key = contextKey(ref);
  for (const [name, context] of Object.entries(all)) {
    if (contextKey(name) !== key) continue;
    build.usedContexts.add(name);
    return { name, context };
  }
  return undefined;
}

/** A warning line for each `--build-context` the Dockerfile never named (BuildKit ignores them without a word). */
export function unusedContextsWarning(build: BuildContext): string[] {
  const unused = Object.keys(build.opts.namedContexts ?? {}).filter((n) => !build.usedContexts.has(n));
  return unused.length ? [`[Warning] build context${unused.length > 1 ? 's' : ''} [${unused.join(', ')}] ${unused.length > 1 ? 'were' : 'was'} not used: no FROM, COPY --from or RUN --mount from= names ${unused.length > 1 ? 'them' : 'it'}`] : [];
}

/**
 * A stage whose base is a named local context: an empty image (as BuildKit's, PATH set) holding the folder's files
 * (after its own `.dockerignore`), copied in by one step that keys on their content.
 */
export function localContextBase(build: BuildContext, stage: Stage, label: string, name: string): StageState {
  const { file, platform } = build;
  const line = stage.from.location.startLine;
  const scratch = build.graph.add({ name: 'FROM scratch', stage: label, op: { type: 'source', ref: 'scratch' }, deps: [], hidden: true });
  const vertex = build.graph.add({
    name: `[context ${name}] load ${name}`,
    stage: label,
    op: { type: 'copy', from: 'context', context: name, sources: ['.'], inline: [], dest: '/', workdir: '/', chown: '', chmod: '', excludes: [], parents: false, link: false, add: false, checksum: '' },
    parent: scratch,
    deps: [],
    location: { file, line },
  });
  const config = { architecture: platform.architecture, os: platform.os, config: { Env: [`PATH=${DEFAULT_PATH}`] }, rootfs: { type: 'layers' as const, diff_ids: [] } };
  return { stage, vertex, config, history: [{ createdBy: `context ${name}`, vertex, emptyLayer: false }] };
}
