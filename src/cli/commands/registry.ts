import type { Command } from 'commander';
import { BuildError } from '../../errors/index.js';
import { loadLocalImage, normalizeRef, pullToState } from '../../engine/index.js';
import { parseRegistryAuthFlag, parseRegistryRef, pushImage, RegistryClient, type Credentials, type RegistryOptions } from '../../registry/index.js';
import { parseCacheFrom, parseCacheRegistry, parseCacheTo, type CacheExportSpec, type CacheImportSpec, type CacheRegistrySpec } from '../../cache-io/index.js';
import { collect, type CliContext } from '../shared.js';
import { parseKeyValues } from '../../flags/index.js';

/** Add `--registry-auth` and `--insecure-registry` to a command. */
export function addRegistryFlags(cmd: Command): Command {
  return cmd
    .option('--registry-auth <host=user:password>', 'credentials for a registry (repeatable; default: ~/.docker/config.json)', collect, [])
    .option('--insecure-registry <host>', 'reach this registry over plain HTTP (loopback always is; repeatable)', collect, []);
}

/** The registry options the flags of {@link addRegistryFlags} give. */
export function registryOptions(o: Record<string, unknown>): RegistryOptions {
  const credentials: Record<string, Credentials> = {};
  for (const spec of (o.registryAuth as string[] | undefined) ?? []) {
    const [host, c] = parseRegistryAuthFlag(spec);
    credentials[host] = c;
  }
  return { credentials, insecureHosts: (o.insecureRegistry as string[] | undefined) ?? [] };
}

/** Add the build flags of the registry and cache import/export feature. */
export function addBuildRegistryFlags(cmd: Command): Command {
  return addRegistryFlags(cmd)
    .option('--push', 'push the image to the registry of every -t name')
    .option('--cache-to <spec>', 'type=registry,ref=REF | type=local,dest=DIR | type=inline; mode=min|max; mounts=true: cache mounts too (registry) (repeatable)', collect, [])
    .option('--cache-from <spec>', 'type=registry,ref=REF | type=local,src=DIR | REF; mounts=true: cache mounts too (registry) (repeatable)', collect, [])
    .option('--cache-registry <ref>', 'shared per-step cache in a registry (HOST/TEAM/PATH or ref=REF,mounts=false): each local miss is looked up there, each step that ran is pushed, cache mounts travel');
}

/**
 * The build request fields the registry flags give: cache sources and exports, refs to push (from `--push` with the
 * tags, and `--output type=registry,name=REF`, which the caller passes in `registryOutputs`), registry options.
 */
export function registryBuildRequest(o: Record<string, unknown>, registryOutputs: string[]): { cacheFrom?: CacheImportSpec[]; cacheTo?: CacheExportSpec[]; cacheRegistry?: CacheRegistrySpec; push?: string[]; registry: RegistryOptions } {
  const cacheFrom = ((o.cacheFrom as string[] | undefined) ?? []).map(parseCacheFrom);
  const cacheRegistry = typeof o.cacheRegistry === 'string' ? parseCacheRegistry(o.cacheRegistry) : undefined;
  if (cacheRegistry) parseRegistryRef(cacheRegistry.ref);
  const cacheTo = ((o.cacheTo as string[] | undefined) ?? []).map(parseCacheTo);
  const push = [...registryOutputs];
  if (o.push) {
    const tags = (o.tag as string[] | undefined) ?? [];
    if (tags.length === 0) throw new BuildError('ERR_KILN_ARGUMENT', '--push needs at least one -t NAME:TAG');
    push.push(...tags);
  }
  for (const ref of push) parseRegistryRef(ref);
  return { ...(cacheFrom.length ? { cacheFrom } : {}), ...(cacheTo.length ? { cacheTo } : {}), ...(cacheRegistry ? { cacheRegistry } : {}), ...(push.length ? { push } : {}), registry: registryOptions(o) };
}

/** Split `--output` specs into registry refs (`type=registry,name=REF`) and the rest. */
export function registryOutputs(specs: string[]): { refs: string[]; rest: string[] } {
  const refs: string[] = [];
  const rest: string[] = [];
  for (const spec of specs) {
    const kv = parseKeyValues(spec, '--output');
    if (kv.type !== 'registry' && !(kv.type === 'image' && kv.push === 'true')) {
      rest.push(spec);
      continue;
    }
    if (!kv.name) throw new BuildError('ERR_KILN_ARGUMENT', '--output type=registry needs name=REF');
    refs.push(kv.name);
  }
  return { refs, rest };
}

/** `kiln pull|push` */
export function registerRegistry(program: Command, cli: CliContext): void {
  addRegistryFlags(
    program
      .command('pull')
      .description('Pull an image from a registry into the local store')
      .argument('<ref>', 'image reference, e.g. localhost:5000/team/app:1'),
  ).action(async (ref: string, o: Record<string, unknown>) => {
    const s = await cli.getState();
    const img = await pullToState(s, ref, { registry: registryOptions(o) });
    process.stderr.write(`pulled ${normalizeRef(ref)}\n`);
    process.stdout.write(`${img.manifestDigest}\n`);
  });

  addRegistryFlags(
    program
      .command('push')
      .description('Push a local image to a registry')
      .argument('<name>', 'local image name')
      .argument('[ref]', 'where to push (default: the name itself)'),
  ).action(async (name: string, ref: string | undefined, o: Record<string, unknown>) => {
    const s = await cli.getState();
    const img = await loadLocalImage(s, name);
    const target = parseRegistryRef(ref ?? name);
    const client = new RegistryClient(registryOptions(o));
    const counts = { exists: 0, mounted: 0, uploaded: 0 };
    const d = await pushImage({
      client, store: s.store, manifest: img.manifestDigest, ref: target.tag || target.digest ? target : { ...target, tag: 'latest' },
      onBlob: (_b, outcome) => counts[outcome]++,
    });
    process.stderr.write(`pushed ${ref ?? name}: ${counts.uploaded} blobs uploaded, ${counts.mounted} mounted, ${counts.exists} already there\n`);
    process.stdout.write(`${d.digest}\n`);
  });
}
