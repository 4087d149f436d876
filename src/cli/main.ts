import { Command, Option } from 'commander';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { BuildError, formatUserError } from '../errors/index.js';
import { openState, runBuild, writeMetadataFile, importRootfs, normalizeRef, loadLocalImage, registerLayers, type State } from '../engine/index.js';
import { createProgress, type ProgressMode } from '../progress/index.js';
import { loadArchive, writeDockerArchive, writeOciLayout } from '../exporter/index.js';
import type { Digest, ImageConfig, Manifest } from '../oci/index.js';

const collect = (v: string, prev: string[]): string[] => [...prev, v];

function version(): string {
  const here = path.dirname(fileURLToPath(import.meta.url));
  for (const p of [path.join(here, '..', '..', 'package.json'), path.join(here, '..', 'package.json')]) {
    if (existsSync(p)) return (JSON.parse(readFileSync(p, 'utf8')) as { version: string }).version;
  }
  return 'unknown';
}

/** `--root DIR` is accepted anywhere on the command line (before or after the command name). */
function extractRoot(argv: string[]): { argv: string[]; root?: string } {
  const out: string[] = [];
  let root: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--') {
      out.push(...argv.slice(i));
      break;
    }
    if (a === '--root') {
      root = argv[++i];
      if (root === undefined) throw new BuildError('ERR_KILN_ARGUMENT', '--root needs a directory');
    } else if (a.startsWith('--root=')) root = a.slice('--root='.length);
    else out.push(a);
  }
  return root !== undefined ? { argv: out, root } : { argv: out };
}

function parseKv(s: string, flag: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const part of s.split(',')) {
    const eq = part.indexOf('=');
    if (eq < 0) throw new BuildError('ERR_KILN_ARGUMENT', `${flag}: expected key=value in "${s}"`);
    out[part.slice(0, eq).trim()] = part.slice(eq + 1);
  }
  return out;
}

function formatSize(n: number): string {
  const u = ['B', 'kB', 'MB', 'GB', 'TB'];
  let i = 0;
  let v = n;
  while (v >= 1000 && i < u.length - 1) {
    v /= 1000;
    i++;
  }
  return `${i === 0 ? v : v.toFixed(v < 10 ? 2 : 1)}${u[i]}`;
}

export async function main(rawArgv: string[]): Promise<number> {
  const { argv, root } = extractRoot(rawArgv);
  let state: State | undefined;
  const getState = async (): Promise<State> => (state ??= await openState(root !== undefined ? { root } : {}));
  const program = new Command();
  program
    .name('kiln')
    .description('Build container images with a correct, explainable, fast cache.\nGlobal option: --root DIR (state directory; also KILN_ROOT), accepted before or after the command.')
    .version(version(), '-v, --version')
    .showHelpAfterError()
    .configureOutput({ outputError: (str, write) => write(str) })
    .exitOverride();

  program
    .command('build')
    .description('Build an image from a Dockerfile')
    .argument('[context]', 'build context directory', '.')
    .option('-f, --file <file>', 'Dockerfile path (default: CONTEXT/Dockerfile)')
    .option('-t, --tag <name:tag>', 'name and tag the image (repeatable)', collect, [])
    .option('--build-arg <key=value>', 'set a build-time variable (repeatable)', collect, [])
    .option('--no-cache', 'do not use the cache for any step')
    .option('--no-cache-filter <stage>', 'do not use the cache for this stage (repeatable)', collect, [])
    .option('--target <stage>', 'build this stage and what it needs')
    .addOption(new Option('--progress <mode>', 'progress output').choices(['auto', 'tty', 'plain', 'json', 'quiet']).default('auto'))
    .option('--metadata-file <file>', 'write the build result (digests, steps) as JSON')
    .option('-o, --output <spec>', 'type=oci|docker,dest=FILE (repeatable)', collect, [])
    .option('--secret <spec>', 'id=ID,src=FILE or id=ID,env=VAR (repeatable)', collect, [])
    .option('--network <mode>', 'network for RUN steps: default|host|none', 'default')
    .option('--platform <platform>', 'target platform (only the host platform is supported)')
    .option('-q, --quiet', 'print only the image digest')
    .action(async (context: string, o: Record<string, unknown>) => {
      const s = await getState();
      const buildArgs: Record<string, string> = {};
      for (const a of o.buildArg as string[]) {
        const eq = a.indexOf('=');
        if (eq < 0) {
          if (process.env[a] !== undefined) buildArgs[a] = process.env[a]!;
        } else buildArgs[a.slice(0, eq)] = a.slice(eq + 1);
      }
      const outputs = (o.output as string[]).map((spec) => {
        const kv = parseKv(spec, '--output');
        const type = kv.type ?? 'oci';
        if (!['oci', 'docker'].includes(type)) throw new BuildError('ERR_KILN_ARGUMENT', `--output: unsupported type "${type}" (use oci or docker)`);
        if (!kv.dest) throw new BuildError('ERR_KILN_ARGUMENT', '--output needs dest=FILE');
        return { type: type as 'oci' | 'docker', dest: path.resolve(kv.dest) };
      });
      const secrets = (o.secret as string[]).map((spec) => {
        const kv = parseKv(spec, '--secret');
        if (!kv.id) throw new BuildError('ERR_KILN_ARGUMENT', '--secret needs id=');
        return { id: kv.id, ...(kv.src ?? kv.source ? { file: path.resolve((kv.src ?? kv.source)!) } : {}), ...(kv.env ? { env: kv.env } : {}) };
      });
      const sde = buildArgs.SOURCE_DATE_EPOCH ?? process.env.SOURCE_DATE_EPOCH;
      const progress = createProgress(o.quiet ? 'quiet' : (o.progress as ProgressMode));
      const ac = new AbortController();
      const onSig = (): void => ac.abort(new BuildError('ERR_KILN_ARGUMENT', 'build interrupted'));
      process.once('SIGINT', onSig);
      process.once('SIGTERM', onSig);
      try {
        const r = await runBuild({
          state: s,
          contextDir: context,
          ...(o.file ? { dockerfile: o.file as string } : {}),
          tags: o.tag as string[],
          buildArgs,
          ...(o.target ? { target: o.target as string } : {}),
          noCache: o.cache === false,
          noCacheFilter: o.noCacheFilter as string[],
          secrets,
          outputs,
          progress,
          ...(sde !== undefined && /^\d+$/.test(sde) ? { sourceDateEpoch: Number(sde) } : {}),
          signal: ac.signal,
        });
        if (o.metadataFile) await writeMetadataFile(path.resolve(o.metadataFile as string), r);
        if (o.quiet) process.stdout.write(`${r.imageDigest}\n`);
        else process.stderr.write(`image ${r.imageDigest}${(o.tag as string[]).length ? ` tagged ${(o.tag as string[]).map(normalizeRef).join(', ')}` : ''}\n`);
      } finally {
        process.off('SIGINT', onSig);
        process.off('SIGTERM', onSig);
      }
    });

  program
    .command('images')
    .description('List local images')
    .option('-q, --quiet', 'only digests')
    .option('--format <fmt>', 'table or json', 'table')
    .action(async (o: { quiet?: boolean; format: string }) => {
      const s = await getState();
      const rows = [];
      for (const img of s.db.listImages()) {
        let size = 0;
        try {
          const m = JSON.parse((await s.store.read(img.manifest)).toString()) as Manifest;
          size = m.config.size + m.layers.reduce((a, l) => a + l.size, 0);
        } catch {
          /* manifest missing: shown with size 0 */
        }
        rows.push({ name: img.name, digest: img.manifest, created: new Date(img.created).toISOString(), size });
      }
      if (o.format === 'json') process.stdout.write(`${JSON.stringify(rows, null, 2)}\n`);
      else if (o.quiet) for (const r of rows) process.stdout.write(`${r.digest}\n`);
      else {
        process.stdout.write(`${'NAME'.padEnd(40)} ${'DIGEST'.padEnd(19)} ${'CREATED'.padEnd(24)} SIZE\n`);
        for (const r of rows) process.stdout.write(`${r.name.padEnd(40)} ${r.digest.slice(7, 19).padEnd(19)} ${r.created.padEnd(24)} ${formatSize(r.size)}\n`);
      }
    });

  program
    .command('rmi')
    .description('Remove image names (the blobs stay until prune)')
    .argument('<names...>')
    .action(async (names: string[]) => {
      const s = await getState();
      for (const n of names) {
        if (!s.db.deleteImage(normalizeRef(n))) throw new BuildError('ERR_KILN_IMAGE_NOT_FOUND', `image "${n}" is not in the local store`);
        process.stdout.write(`Untagged: ${normalizeRef(n)}\n`);
      }
    });

  program
    .command('tag')
    .description('Give an image another name')
    .argument('<source>')
    .argument('<target>')
    .action(async (source: string, target: string) => {
      const s = await getState();
      const img = await loadLocalImage(s, source);
      s.db.putImage({ name: normalizeRef(target), manifest: img.manifestDigest, created: Date.now() });
    });

  program
    .command('import')
    .description('Create a one-layer image from a root filesystem tar (plain or gzip) or directory')
    .argument('<rootfs>')
    .argument('<name>')
    .action(async (rootfs: string, name: string) => {
      const s = await getState();
      const d = await importRootfs(s, { source: path.resolve(rootfs), name });
      process.stdout.write(`${d}\n`);
    });

  program
    .command('load')
    .description('Load images from an OCI layout tar/dir or a docker-save tar')
    .argument('<file>')
    .option('-t, --tag <name>', 'name for an image the archive leaves unnamed')
    .action(async (file: string, o: { tag?: string }) => {
      const s = await getState();
      const loaded = await loadArchive({ store: s.store, source: path.resolve(file) });
      for (const l of loaded) {
        const names = l.names.length ? l.names : o.tag ? [o.tag] : [];
        let manifestDigest: Digest = l.manifest;
        const first = JSON.parse((await s.store.read(l.manifest)).toString()) as Manifest | { manifests: Array<{ digest: Digest }> };
        if ('manifests' in first) manifestDigest = first.manifests[0]!.digest;
        const m = JSON.parse((await s.store.read(manifestDigest)).toString()) as Manifest;
        const cfg = JSON.parse((await s.store.read(m.config.digest)).toString()) as ImageConfig;
        registerLayers(s, m, cfg);
        for (const n of names) s.db.putImage({ name: normalizeRef(n), manifest: l.manifest, created: Date.now() });
        process.stdout.write(`Loaded image: ${names.map(normalizeRef).join(', ') || l.manifest}\n`);
      }
    });

  program
    .command('save')
    .description('Write images to a tar (OCI layout or docker-loadable)')
    .argument('<names...>')
    .requiredOption('-o, --output <file>', 'output file')
    .addOption(new Option('--format <format>', 'archive format').choices(['oci', 'docker']).default('oci'))
    .action(async (names: string[], o: { output: string; format: string }) => {
      const s = await getState();
      const images = [];
      for (const n of names) {
        const img = await loadLocalImage(s, n);
        images.push({ manifest: img.manifestDigest, names: [normalizeRef(n)] });
      }
      if (o.format === 'docker') await writeDockerArchive({ store: s.store, images, dest: path.resolve(o.output) });
      else await writeOciLayout({ store: s.store, images, dest: path.resolve(o.output) });
    });

  try {
    await program.parseAsync(argv, { from: 'user' });
    return 0;
  } catch (err) {
    const e = err as { code?: string; exitCode?: number };
    if (typeof e.code === 'string' && e.code.startsWith('commander.')) {
      return e.code === 'commander.helpDisplayed' || e.code === 'commander.version' || e.code === 'commander.help' ? 0 : (e.exitCode ?? 2);
    }
    process.stderr.write(`${formatUserError(err)}\n`);
    if (process.env.KILN_DEBUG && err instanceof Error) process.stderr.write(`${err.stack}\n`);
    return 1;
  } finally {
    state?.close();
  }
}
