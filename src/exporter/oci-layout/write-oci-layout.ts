import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { BuildError } from '../../errors/index.js';
import type { Descriptor } from '../../oci/index.js';
import { createDirSink, createTarSink } from '../archive/sink.js';
import { ANNOTATION_IMAGE_NAME, ANNOTATION_REF_NAME, indexEntries, OCI_LAYOUT, writeLayout } from '../layout.js';
import { checkIndex, parseJson, planExport } from '../plan.js';
import type { WriteOciLayoutOptions } from '../types.js';

/**
 * Write the images as an OCI image layout: `oci-layout`, `index.json` (one entry per name, annotated with
 * `org.opencontainers.image.ref.name` and `io.containerd.image.name` as BuildKit does) and `blobs/sha256/*`.
 * As a tar (default; same images give the same bytes) or, with `format: 'dir'`, into a folder, where images already in
 * that layout are kept unless a new one takes their name.
 *
 * @example
 * await writeOciLayout({ store, images: [{ manifest, names: ['app:1.0'] }], dest: 'app.tar' });
 * // skopeo inspect oci-archive:app.tar
 */
export async function writeOciLayout(opts: WriteOciLayoutOptions): Promise<void> {
  const format = opts.format ?? 'tar';
  if (format === 'dir' && typeof opts.dest !== 'string') {
    throw new BuildError('ERR_KILN_ARGUMENT', 'an OCI layout folder needs a path as its destination');
  }
  const plan = await planExport(opts);
  let entries = indexEntries(plan.images);
  if (format === 'dir') entries = mergeEntries(await readExistingIndex(opts.dest as string), entries);
  await writeLayout({
    openSink: () => (format === 'dir'
      ? createDirSink({ dir: opts.dest as string })
      : createTarSink({ dest: opts.dest, mtime: new Date((opts.sourceDateEpoch ?? 0) * 1000) })),
    dest: typeof opts.dest === 'string' ? opts.dest : 'the output stream',
    store: opts.store,
    plan,
    index: entries,
    ...(opts.signal ? { signal: opts.signal } : {}),
  });
}

/** Entries of an `index.json` already in `dir`, or none. */
async function readExistingIndex(dir: string): Promise<Descriptor[]> {
  let layout: Buffer;
  try {
    layout = await fsp.readFile(path.join(dir, 'oci-layout'));
  } catch {
    return [];
  }
  const version = parseJson(layout, `${dir}/oci-layout`).imageLayoutVersion;
  if (version !== OCI_LAYOUT.imageLayoutVersion) {
    throw new BuildError('ERR_KILN_IMAGE_INVALID', `${dir} holds an OCI layout of version ${String(version)}, kiln writes ${OCI_LAYOUT.imageLayoutVersion}`);
  }
  const data = await fsp.readFile(path.join(dir, 'index.json')).catch(() => undefined);
  if (data === undefined) return [];
  return checkIndex(parseJson(data, `${dir}/index.json`), `${dir}/index.json`).manifests;
}

/** Keep old entries unless a new entry has the same full name or the same ref name; new entries go last. */
function mergeEntries(old: Descriptor[], added: Descriptor[]): Descriptor[] {
  const taken = new Set<string>();
  for (const d of added) {
    for (const key of [ANNOTATION_IMAGE_NAME, ANNOTATION_REF_NAME]) {
      const v = d.annotations?.[key];
      if (v !== undefined) taken.add(`${key}=${v}`);
    }
  }
  const kept = old.filter((d) => {
    const names = [ANNOTATION_IMAGE_NAME, ANNOTATION_REF_NAME].map((k) => (d.annotations?.[k] === undefined ? undefined : `${k}=${d.annotations[k]}`));
    if (names.some((n) => n !== undefined && taken.has(n))) return false;
    // an unnamed old entry is dropped when the same manifest is added again
    return names.some((n) => n !== undefined) || !added.some((a) => a.digest === d.digest);
  });
  return [...kept, ...added];
}
