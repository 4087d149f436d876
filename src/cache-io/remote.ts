import { sha256, type Digest } from '../oci/index.js';
import { formatRegistryRef, isRegistryNotFound, parseRegistryRef, pushImage, type RegistryClient, type RegistryRef } from '../registry/index.js';
import { collectCache, writeCacheManifest } from './export.js';
import { ensureLayer, oneLine, openSource, type ImportCacheOptions } from './import.js';
import type { CacheImportReport, CacheStores } from './types.js';

/**
 * The shared per-step cache in a registry (`--cache-registry REF`, the engine's `cacheRegistry`). The repository of
 * REF is the team's namespace; every cache key is one ordinary OCI image manifest in it, tagged from the key:
 *
 *   REPO:step-<hex of the key>   manifest → config: a kiln cache config (one record), layers: that step's layer (0 or 1)
 *   REPO:base-<sha256 of name>   the base image a build resolved under that name (the image's own manifest)
 *   REPO:mount-<sha256 of key>   a cache mount's snapshot (`./mounts.ts`)
 *
 * The record is exactly the local `cache` row (the key as computed, output id, diffId, name, key inputs, created)
 * and the layer's `layers` row (blob, media type, size, contentId), the same config `--cache-to` writes, so
 * `--cache-from REPO:step-<hex>` reads one too.
 */

/** Tag of a cache key's manifest: `step-` and the key's hex (keys are sha256 digests). */
export function stepTag(key: string): string {
  const hex = /^sha256:([a-f0-9]{64})$/.exec(key)?.[1] ?? sha256(key).slice(7);
  return `step-${hex}`;
}

/** Tag of a base image under its (normalised) name. */
export function baseTag(name: string): string {
  return `base-${sha256(name).slice(7)}`;
}

/** Bytes moved to (`pushed`) or from (`pulled`) a registry: one blob or manifest body, after it went through whole. */
export interface RegistryTransfer {
  direction: 'pushed' | 'pulled';
  bytes: number;
}

/**
 * The same client, telling `onTransfer` of every blob and manifest body it actually moves: a blob uploaded (not one
 * the repository had or mounted from another), a blob downloaded and verified, a manifest put or got. The sizes are
 * the ones the client checked against the digests, so they are what crossed the wire, not an estimate. The service
 * meters a team's shared-cache traffic with it.
 */
export function meterRegistryClient(client: RegistryClient, onTransfer: (t: RegistryTransfer) => void): RegistryClient {
  const metered = Object.create(client) as RegistryClient;
  const note = (direction: RegistryTransfer['direction'], bytes: number): void => {
    if (bytes > 0) onTransfer({ direction, bytes });
  };
  metered.pushBlob = async (a) => {
    const outcome = await client.pushBlob.call(metered, a);
    if (outcome === 'uploaded') note('pushed', a.descriptor.size);
    return outcome;
  };
  metered.fetchBlob = async (a) => {
    await client.fetchBlob.call(metered, a);
    note('pulled', a.descriptor.size); // the client checked that exactly this many bytes came, hashing to the digest
  };
  metered.putManifest = async (a) => {
    const digest = await client.putManifest.call(metered, a);
    note('pushed', a.data.length);
    return digest;
  };
  metered.getManifest = async (ref, a) => {
    const got = await client.getManifest.call(metered, ref, a);
    note('pulled', got.data.length);
    return got;
  };
  return metered;
}

/** What the shared cache did during one build. */
export interface RemoteCacheReport {
  /** steps brought in from the registry (record + layer, verified) */
  hits: number;
  /** local misses the registry did not have either */
  misses: number;
  /** layer blobs downloaded, and their bytes */
  layersFetched: number;
  bytesFetched: number;
  /** records pushed: steps that ran, and local hits the registry lacked */
  pushed: number;
  /** base images pushed under their name */
  basesPushed: number;
  /** one line per problem (unreachable registry, corrupt blob, failed push): the build goes on without it */
  warnings: string[];
}

/** Options of {@link createRegistryStepCache}. */
export interface RegistryStepCacheOptions {
  stores: CacheStores;
  client: RegistryClient;
  /** `host[:port]/team/path` (a tag, if given, is ignored) */
  ref: string;
  /** parallel pushes (default 3) */
  concurrency?: number;
  /** told of each warning as it happens (progress output) */
  onWarning?: (message: string) => void;
  /** told of every byte the cache moves to or from the registry (the service's usage metering) */
  onTransfer?: (t: RegistryTransfer) => void;
  signal?: AbortSignal;
}

/** The per-step registry cache of one build: the solver's `remote`, plus base images and the pushes to wait for. */
export interface RegistryStepCache {
  /** the team's repository */
  readonly repo: RegistryRef;
  fetch(key: string, o: { signal: AbortSignal }): Promise<boolean>;
  publish(step: { key: string; cached: boolean }): void;
  /** push a base image the build used under `name` (background; skipped when the tag already points at it) */
  publishBase(name: string, manifest: Digest): void;
  /** the ref a base image under `name` would have in the shared cache */
  baseRef(name: string): RegistryRef;
  /** wait for every push started so far; the report of the whole build */
  flush(): Promise<RemoteCacheReport>;
}

/**
 * The shared per-step cache: on a local miss, GET the key's manifest; a hit brings in the config and the layer blob
 * (checked against its digest while downloading, then unpacked against its diffId) and records it locally, so the
 * solver uses it like any local hit. After a step runs its record and layer are pushed in the background
 * (blobs the repository has are skipped); `flush` waits for them. A failure is a warning: that step just runs.
 *
 * @example
 * const rc = createRegistryStepCache({ stores: state, client, ref: 'localhost:5000/team/cache' });
 * await solve({ graph, runner, cache, remote: rc });
 * const report = await rc.flush();
 */
export function createRegistryStepCache(o: RegistryStepCacheOptions): RegistryStepCache {
  const parsed = parseRegistryRef(o.ref);
  const repo: RegistryRef = { host: parsed.host, repository: parsed.repository };
  const client = o.onTransfer ? meterRegistryClient(o.client, o.onTransfer) : o.client;
  const report: RemoteCacheReport = { hits: 0, misses: 0, layersFetched: 0, bytesFetched: 0, pushed: 0, basesPushed: 0, warnings: [] };
  const warn = (m: string): void => {
    report.warnings.push(m);
    o.onWarning?.(m);
  };
  const sig = o.signal ? { signal: o.signal } : {};
  const pending: Array<Promise<void>> = [];
  const offered = new Set<string>();
  const limit = o.concurrency ?? 3;
  let active = 0;
  const waiting: Array<() => void> = [];
  const background = (what: string, fn: () => Promise<void>): void => {
    const p = (async () => {
      if (active >= limit) await new Promise<void>((r) => waiting.push(r));
      active++;
      try {
        await fn();
      } catch (err) {
        if (o.signal?.aborted) return;
        warn(`${what} not pushed to ${formatRegistryRef(repo)}: ${oneLine(err)}`);
      } finally {
        active--;
        waiting.shift()?.();
      }
    })();
    pending.push(p);
  };
  const tagRef = (tag: string): RegistryRef => ({ ...repo, tag });

  async function pushStep(key: string, cached: boolean): Promise<void> {
    const ref = tagRef(stepTag(key));
    // a local hit the registry may have already (a build before --cache-registry was on): push only what it lacks
    if (cached && (await client.headManifest(ref, sig))) return;
    const cfg = collectCache(o.stores.db, [key]);
    if (cfg.records.length === 0) return;
    const m = await writeCacheManifest(o.stores, cfg);
    await pushImage({ client, store: o.stores.store, manifest: m.descriptor.digest, ref, ...sig });
    report.pushed++;
  }

  return {
    repo,
    async fetch(key, f) {
      const opts: ImportCacheOptions = { stores: o.stores, sources: [], client, signal: f.signal };
      let src;
      try {
        src = await openSource(opts, { type: 'registry', ref: formatRegistryRef(tagRef(stepTag(key))) });
      } catch (err) {
        if ((err as Error).name === 'AbortError' || f.signal.aborted) throw err;
        if (isRegistryNotFound(err)) report.misses++;
        else warn(`shared cache lookup of ${stepTag(key)} failed: ${oneLine(err)}`);
        return false;
      }
      // the record must be the one asked for: a manifest under another key's tag is not trusted
      const rec = src.cfg.records.find((r) => r.key === key);
      if (!rec) {
        warn(`${src.name} holds no record for its key; ignored`);
        return false;
      }
      const rep: CacheImportReport = { imported: 0, present: 0, dropped: 0, fetched: 0, warnings: [] };
      if (rec.diffId !== null) {
        const l = src.cfg.layers.find((x) => x.diffId === rec.diffId);
        if (!l) {
          warn(`${src.name}: the record's layer ${rec.diffId} is not described; the step runs`);
          return false;
        }
        let ok = false;
        try {
          ok = await ensureLayer(opts, src, l, rep);
        } catch (err) {
          if ((err as Error).name === 'AbortError' || f.signal.aborted) throw err;
          rep.warnings.push(`${src.name}: layer ${l.blob} not usable: ${oneLine(err)}`);
        }
        for (const w of rep.warnings) warn(`${w}; the step runs`);
        if (rep.fetched) {
          report.layersFetched += rep.fetched;
          report.bytesFetched += l.size;
        }
        if (!ok) return false;
      }
      o.stores.db.cacheRecords.putCache({ key: rec.key, outputId: rec.outputId, diffId: rec.diffId, name: rec.name, inputs: rec.inputs, created: rec.created });
      report.hits++;
      return true;
    },
    publish(step) {
      if (offered.has(step.key)) return;
      offered.add(step.key);
      background(`cache record ${stepTag(step.key)}`, () => pushStep(step.key, step.cached));
    },
    baseRef: (name) => tagRef(baseTag(name)),
    publishBase(name, manifest) {
      const ref = tagRef(baseTag(name));
      if (offered.has(ref.tag!)) return;
      offered.add(ref.tag!);
      background(`base image ${name}`, async () => {
        if ((await client.headManifest(ref, sig))?.digest === manifest) return;
        await pushImage({ client, store: o.stores.store, manifest, ref, ...sig });
        report.basesPushed++;
      });
    },
    async flush() {
      // pushes may start while earlier ones finish: wait until none is left
      for (let n = 0; n < pending.length; ) {
        const batch = pending.slice(n);
        n = pending.length;
        await Promise.all(batch);
      }
      return report;
    },
  };
}
