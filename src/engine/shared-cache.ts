import path from 'node:path';
import { isNotFound } from '../errors/index.js';
import type { Digest } from '../oci/index.js';
import type { CacheMountOpened } from '../cache/index.js';
import type { LocalImage } from '../ops/index.js';
import { parseRegistryRef, pullImage, type RegistryClient, type RegistryRef } from '../registry/index.js';
import type { RemoteCache } from '../solver/index.js';
import {
  createRegistryStepCache, exportMount, importMount, meterRegistryClient,
  type CacheExportSpec, type CacheImportSpec, type CacheRegistrySpec, type MountTransferReport, type RegistryStepCache, type RegistryTransfer, type RemoteCacheReport,
} from '../cache-io/index.js';
import { loadLocalImage, normalizeRef, registerLayers } from './images.js';
import type { State } from './state.js';

/** What the shared cache did in one build (`BuildResult.sharedCache`). */
export interface SharedCacheReport extends Partial<RemoteCacheReport> {
  /** cache mounts brought in (per mount key and source) */
  mountImports: MountTransferReport[];
  /** cache mounts snapshotted into the registry (per mount key and target) */
  mountExports: MountTransferReport[];
}

/** Options of {@link openSharedCache}. */
export interface OpenSharedCacheOptions {
  state: State;
  client: () => RegistryClient;
  /** the per-step cache (`--cache-registry`) */
  cacheRegistry?: CacheRegistrySpec;
  /** `--cache-from type=registry,...,mounts=true` sources: cache mounts are imported from them */
  cacheFrom?: CacheImportSpec[];
  /** `--cache-to type=registry,...,mounts=true` targets: cache mounts are exported to them */
  cacheTo?: CacheExportSpec[];
  info(message: string): void;
  /** told of every byte moved to or from the registries of the shared cache (steps, base copies, cache mounts) */
  onTransfer?: (t: RegistryTransfer) => void;
  signal?: AbortSignal;
}

/** The shared cache of one build, as the engine wires it into resolution, the solver and the RUN mounts. */
export interface SharedCache {
  /** the solver's remote (only with `cacheRegistry`) */
  remote?: RemoteCache;
  /** the runner's cache-mount hook (only when some source or target shares mounts) */
  onCacheMount?: (m: CacheMountOpened) => Promise<void>;
  /** a base image missing here, from the team's copy under its name; undefined when there is none */
  pullBase(ref: string): Promise<LocalImage | undefined>;
  /** the build resolved `ref` to this image: the team's copy follows (background) */
  noteBase(ref: string, manifest: Digest): void;
  /** wait for pushes, export the mounts this build used; the report */
  finish(): Promise<SharedCacheReport>;
}

function repoOf(ref: string): RegistryRef {
  const r = parseRegistryRef(ref);
  return { host: r.host, repository: r.repository };
}

/**
 * Open the build's shared cache: the per-step registry cache, base images under their names, cache mounts imported
 * on first use and exported after the build. Every transfer failure is a warning (`info`), never a failed build.
 */
export function openSharedCache(o: OpenSharedCacheOptions): SharedCache {
  const s = o.state;
  const sig = o.signal ? { signal: o.signal } : {};
  const onTransfer = o.onTransfer;
  const steps: RegistryStepCache | undefined = o.cacheRegistry
    ? createRegistryStepCache({ stores: s, client: o.client(), ref: o.cacheRegistry.ref, onWarning: (m) => o.info(`warning: shared cache: ${m}`), ...(onTransfer ? { onTransfer } : {}), ...sig })
    : undefined;
  // base copies and cache mounts: the same client, metered the same way as the step cache's
  let metered: RegistryClient | undefined;
  const client = (): RegistryClient => (onTransfer ? (metered ??= meterRegistryClient(o.client(), onTransfer)) : o.client());
  const shareMounts = o.cacheRegistry && o.cacheRegistry.mounts !== false ? [repoOf(o.cacheRegistry.ref)] : [];
  const mountSources = [...shareMounts, ...(o.cacheFrom ?? []).flatMap((c) => (c.type === 'registry' && c.mounts ? [repoOf(c.ref)] : []))];
  const mountTargets = [...shareMounts, ...(o.cacheTo ?? []).flatMap((c) => (c.type === 'registry' && c.mounts ? [repoOf(c.ref)] : []))];
  const used = new Map<string, CacheMountOpened>();
  const imports = new Map<string, Promise<void>>();
  const report: SharedCacheReport = { mountImports: [], mountExports: [] };
  const where = (r: RegistryRef): string => `${r.host}/${r.repository}`;
  let finishing: Promise<SharedCacheReport> | undefined;

  const importOnce = (m: CacheMountOpened): Promise<void> => {
    let p = imports.get(m.key);
    if (!p) {
      p = (async () => {
        for (const repo of mountSources) {
          try {
            const r = await importMount({ client: client(), repo, key: m.key, dir: m.dataDir, tmpDir: m.tmpDir, stateFile: m.stateFile, ...sig });
            if (r.files > 0) {
              report.mountImports.push(r);
              o.info(`cache mount ${m.id}: ${r.files} entries (${r.bytes} bytes) from ${where(repo)}`);
            }
          } catch (err) {
            if (o.signal?.aborted) throw err;
            o.info(`warning: cache mount ${m.id} not imported from ${where(repo)}: ${(err as Error).message}`);
          }
        }
      })();
      imports.set(m.key, p);
    }
    return p;
  };

  return {
    ...(steps ? { remote: steps } : {}),
    ...(mountSources.length || mountTargets.length
      ? {
          onCacheMount: async (m: CacheMountOpened) => {
            used.set(m.key, m);
            await importOnce(m);
          },
        }
      : {}),
    async pullBase(ref) {
      if (!steps) return undefined;
      const from = steps.baseRef(normalizeRef(ref));
      let pulled;
      try {
        pulled = await pullImage({ client: client(), ref: from, store: s.store, ...sig });
      } catch (err) {
        if (o.signal?.aborted) throw err;
        return undefined; // the team has no copy under this name: the name's own registry is next
      }
      registerLayers(s, pulled.manifest, pulled.config);
      const name = normalizeRef(ref);
      if (!name.includes('@')) s.db.images.putImage({ name, manifest: pulled.manifestDigest, created: Date.now() });
      o.info(`base ${name} from the shared cache (${pulled.manifestDigest})`);
      try {
        return await loadLocalImage(s, ref);
      } catch (err) {
        if (isNotFound(err)) return undefined; // FROM name@digest and the team's copy is another image
        throw err;
      }
    },
    noteBase(ref, manifest) {
      steps?.publishBase(normalizeRef(ref), manifest);
    },
    finish() {
      return (finishing ??= finishOnce());
    },
  };

  async function finishOnce(): Promise<SharedCacheReport> {
    if (steps) Object.assign(report, await steps.flush());
    for (const m of used.values()) {
      for (const repo of mountTargets) {
        try {
          const r = await exportMount({ client: client(), repo, key: m.key, id: m.id, dir: m.dataDir, tmpDir: path.join(s.root, 'tmp'), stateFile: m.stateFile, ...sig });
          report.mountExports.push(r);
          o.info(`cache mount ${m.id}: ${r.files} entries shared with ${where(repo)} (${r.bytes} new bytes)`);
        } catch (err) {
          if (o.signal?.aborted) throw err;
          o.info(`warning: cache mount ${m.id} not exported to ${where(repo)}: ${(err as Error).message}`);
        }
      }
    }
    return report;
  }
}
