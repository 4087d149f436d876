import { readdirSync, type Dirent } from 'node:fs';
import { BuildError } from '../errors/index.js';
import {
  exceptionMayMatchBelow,
  includeMayMatchBelow,
  matchWithParent,
  type CompiledMatcher,
} from './pattern-matcher.js';
import { compareNames, joinRel } from './path-utils.js';

/**
 * The filtered depth-first walk shared by the context walk and the checksummer. It follows fsutil's
 * filterFS: each layer has optional include and exclude matchers; an entry is yielded when every layer keeps
 * it; a directory that no layer can keep anything inside is not read at all; a directory that is dropped but
 * may hold kept entries is read, and is yielded lazily right before its first kept descendant.
 * @internal
 */

/** One filter: include and/or exclude patterns, matched against the walk path minus `strip`. */
export interface WalkLayer {
  include: CompiledMatcher | null;
  exclude: CompiledMatcher | null;
  /** Prefix removed from walk paths before matching (a source dir plus '/'), or ''. */
  strip: string;
}

interface LayerState {
  inc: Uint8Array | null;
  exc: Uint8Array | null;
}

/** A directory on the walk stack. */
export interface WalkFrame {
  rel: string;
  abs: string;
  parent: WalkFrame | null;
  yielded: boolean;
  states: LayerState[];
}

/** What the walker hands to the visitor. */
export interface WalkItem {
  rel: string;
  abs: string;
  isDir: boolean;
}

export interface WalkEngineOptions {
  layers: WalkLayer[];
  visit: (item: WalkItem) => void;
  signal?: AbortSignal;
}

type Verdict = { kind: 'skipdir' } | { kind: 'entry'; keep: boolean; states: LayerState[] };

const SKIP_DIR: Verdict = { kind: 'skipdir' };

/** Evaluate every layer for one entry (fsutil filterFS.Walk's decision). */
function evaluate(layers: WalkLayer[], parent: WalkFrame, rel: string, isDir: boolean): Verdict {
  let keep = true;
  const states: LayerState[] = new Array(layers.length);
  for (let k = 0; k < layers.length; k++) {
    const layer = layers[k];
    const path = layer.strip === '' ? rel : rel.slice(layer.strip.length);
    if (path === '') {
      // the start directory of a layer that is relative to it (a COPY source): never matched itself
      states[k] = { inc: null, exc: null };
      continue;
    }
    const parentState = parent.states[k];
    const st: LayerState = { inc: null, exc: null };
    if (layer.include) {
      const r = matchWithParent(layer.include, path, parentState?.inc ?? null);
      st.inc = r.bits;
      if (!r.matched) {
        if (isDir && layer.include.onlyPrefixIncludes && !includeMayMatchBelow(layer.include, path)) return SKIP_DIR;
        keep = false;
      }
    }
    if (layer.exclude) {
      const r = matchWithParent(layer.exclude, path, parentState?.exc ?? null);
      st.exc = r.bits;
      if (r.matched) {
        if (isDir && !exceptionMayMatchBelow(layer.exclude, path)) return SKIP_DIR;
        keep = false;
      }
    }
    states[k] = st;
  }
  return { kind: 'entry', keep, states };
}

/** The verdict for a start directory that is not the walk root (its own parents give no state). */
export function startFrame(opts: { layers: WalkLayer[]; rel: string; abs: string }): WalkFrame | null {
  const root: WalkFrame = { rel: '.', abs: opts.abs, parent: null, yielded: true, states: opts.layers.map(() => ({ inc: null, exc: null })) };
  if (opts.rel === '.') return root;
  const v = evaluate(opts.layers, root, opts.rel, true);
  if (v.kind === 'skipdir') return null;
  return { rel: opts.rel, abs: opts.abs, parent: null, yielded: v.keep, states: v.states };
}

/** Decide whether a single non-directory path is kept by every layer (used for a file given directly). */
export function keepsFile(layers: WalkLayer[], rel: string): boolean {
  const root: WalkFrame = { rel: '.', abs: '', parent: null, yielded: true, states: layers.map(() => ({ inc: null, exc: null })) };
  const v = evaluate(layers, root, rel, false);
  return v.kind === 'entry' && v.keep;
}

function errnoReason(err: unknown): string {
  const code = (err as NodeJS.ErrnoException).code;
  if (code === 'EACCES' || code === 'EPERM') return 'permission denied';
  return (err as Error).message;
}

function readSorted(frame: WalkFrame): Dirent[] | null {
  try {
    const entries = readdirSync(frame.abs, { withFileTypes: true });
    return entries.sort((a, b) => compareNames(a.name, b.name));
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return null;
    if (!frame.yielded && (code === 'EACCES' || code === 'EPERM')) return null;
    throw new BuildError(
      'ERR_KILN_CONTEXT_UNREADABLE',
      `cannot read directory ${JSON.stringify(frame.rel)} in the build context: ${errnoReason(err)}`,
      { cause: err, details: { path: frame.rel } },
    );
  }
}

function yieldParents(frame: WalkFrame, visit: (item: WalkItem) => void): void {
  const pending: WalkFrame[] = [];
  for (let f: WalkFrame | null = frame; f && !f.yielded; f = f.parent) pending.push(f);
  for (let i = pending.length - 1; i >= 0; i--) {
    pending[i].yielded = true;
    visit({ rel: pending[i].rel, abs: pending[i].abs, isDir: true });
  }
}

/** Walk below `frame` (which has already been yielded or is pending). Synchronous by design: see DEPENDENCIES.md. */
export function walkBelow(frame: WalkFrame, opts: WalkEngineOptions): void {
  const entries = readSorted(frame);
  if (!entries) return;
  for (const d of entries) {
    if (opts.signal?.aborted) throw opts.signal.reason;
    const rel = joinRel(frame.rel, d.name);
    const isDir = d.isDirectory();
    const v = evaluate(opts.layers, frame, rel, isDir);
    if (v.kind === 'skipdir') continue;
    const abs = `${frame.abs}/${d.name}`;
    if (v.keep) {
      yieldParents(frame, opts.visit);
      opts.visit({ rel, abs, isDir });
    }
    if (isDir) walkBelow({ rel, abs, parent: frame, yielded: v.keep, states: v.states }, opts);
  }
}
