import { BuildError } from '../errors/index.js';
import { parseKeyValues } from '../flags/index.js';
import type { CacheExportSpec, CacheImportSpec, CacheMode, CacheRegistrySpec } from './types.js';

function kv(spec: string, flag: string): Record<string, string> {
  return parseKeyValues(spec, flag, 'ERR_KILN_CACHE_SOURCE');
}

function bool(v: string | undefined, flag: string): boolean {
  if (v === undefined || v === 'false') return false;
  if (v === 'true' || v === '') return true;
  throw new BuildError('ERR_KILN_CACHE_SOURCE', `${flag} must be true or false, not "${v}"`);
}

function mode(v: string | undefined, flag: string): CacheMode {
  if (v === undefined || v === 'min' || v === 'max') return v ?? 'min';
  throw new BuildError('ERR_KILN_CACHE_SOURCE', `${flag}: mode must be min or max, not "${v}"`);
}

/**
 * `--cache-to type=local,dest=DIR[,mode=min|max][,tag=T]`, `type=registry,ref=REF[,mode=…]` or `type=inline`.
 *
 * @example
 * parseCacheTo('type=registry,ref=localhost:5000/app:cache,mode=max')
 */
export function parseCacheTo(spec: string): CacheExportSpec {
  const o = kv(spec, '--cache-to');
  const m = mode(o.mode, '--cache-to');
  switch (o.type) {
    case 'inline':
      return { type: 'inline' };
    case 'local':
      if (!o.dest) throw new BuildError('ERR_KILN_CACHE_SOURCE', '--cache-to type=local needs dest=DIR');
      return { type: 'local', dest: o.dest, mode: m, tag: o.tag ?? 'latest' };
    case 'registry': {
      const ref = o.ref ?? o.name;
      if (!ref) throw new BuildError('ERR_KILN_CACHE_SOURCE', '--cache-to type=registry needs ref=REF');
      return { type: 'registry', ref, mode: m, ...(bool(o.mounts, '--cache-to mounts') ? { mounts: true } : {}) };
    }
    default:
      throw new BuildError('ERR_KILN_CACHE_SOURCE', `--cache-to: unsupported type "${o.type ?? ''}" (use local, registry or inline)`);
  }
}

/** `--cache-from type=local,src=DIR[,tag=T]`, `type=registry,ref=REF`, or a bare REF (a registry ref). */
export function parseCacheFrom(spec: string): CacheImportSpec {
  if (!spec.includes('=')) return { type: 'registry', ref: spec };
  const o = kv(spec, '--cache-from');
  switch (o.type) {
    case 'local':
      if (!o.src) throw new BuildError('ERR_KILN_CACHE_SOURCE', '--cache-from type=local needs src=DIR');
      return { type: 'local', src: o.src, tag: o.tag ?? 'latest' };
    case 'registry': {
      const ref = o.ref ?? o.name;
      if (!ref) throw new BuildError('ERR_KILN_CACHE_SOURCE', '--cache-from type=registry needs ref=REF');
      return { type: 'registry', ref, ...(bool(o.mounts, '--cache-from mounts') ? { mounts: true } : {}) };
    }
    default:
      throw new BuildError('ERR_KILN_CACHE_SOURCE', `--cache-from: unsupported type "${o.type ?? ''}" (use local or registry)`);
  }
}

/**
 * `--cache-registry REF` or `--cache-registry ref=REF[,mounts=false]`: the shared per-step cache.
 *
 * @example
 * parseCacheRegistry('localhost:5000/team/cache') // { ref: 'localhost:5000/team/cache', mounts: true }
 */
export function parseCacheRegistry(spec: string): CacheRegistrySpec {
  if (!spec.includes('=')) return { ref: spec, mounts: true };
  const o = kv(spec, '--cache-registry');
  const ref = o.ref ?? o.name;
  if (!ref) throw new BuildError('ERR_KILN_CACHE_REGISTRY', '--cache-registry needs REF or ref=REF');
  const unknown = Object.keys(o).filter((k) => !['ref', 'name', 'mounts'].includes(k));
  if (unknown.length) throw new BuildError('ERR_KILN_CACHE_REGISTRY', `--cache-registry: unknown option "${unknown[0]}" (use ref= and mounts=)`);
  return { ref, mounts: o.mounts === undefined ? true : registryBool(o.mounts) };
}

function registryBool(v: string): boolean {
  if (v === 'true' || v === '') return true;
  if (v === 'false') return false;
  throw new BuildError('ERR_KILN_CACHE_REGISTRY', `--cache-registry mounts must be true or false, not "${v}"`);
}
