import { Option, type Command } from 'commander';
import path from 'node:path';
import { BuildError } from '../../errors/index.js';
import { importRootfs, normalizeRef, loadLocalImage, registerLayers, unpackImage, validateImageName } from '../../engine/index.js';
import { loadArchive, writeDockerArchive, writeOciLayout } from '../../exporter/index.js';
import type { Digest, ImageConfig, Manifest } from '../../oci/index.js';
import type { CliContext } from '../shared.js';
import { formatBytes } from '../../gc/index.js';
import { listContainers } from '../../run/index.js';

/** A value of `{{.A.B}}` / `{{json .A}}` in a `--format` template (the part of Go templates people type for inspect). */
function formatTemplate(tpl: string, value: unknown): string {
  return tpl.replace(/\{\{\s*(json\s+)?\.([A-Za-z0-9_.]*)\s*\}\}/g, (_m, json: string | undefined, p: string) => {
    let v: unknown = value;
    for (const k of p.split('.').filter(Boolean)) v = v && typeof v === 'object' ? (v as Record<string, unknown>)[k] : undefined;
    if (json) return JSON.stringify(v ?? null);
    if (v === undefined || v === null) return '<no value>';
    if (Array.isArray(v)) return `[${v.join(' ')}]`;
    return typeof v === 'object' ? `map[${Object.entries(v as Record<string, unknown>).map(([k, x]) => `${k}:${String(x)}`).join(' ')}]` : String(v);
  }).replace(/\\n/g, '\n');
}

/** `kiln inspect IMAGE...`: the image config and manifest as JSON, in `docker image inspect`'s shape. */
async function inspectImages(cli: CliContext, names: string[], format: string | undefined): Promise<void> {
  const s = await cli.getState();
  const out: unknown[] = [];
  const images = s.db.images.listImages();
  for (const n of names) {
    const img = await loadLocalImage(s, n);
    const m = img.manifest;
    const cfg = img.config;
    out.push({
      Id: m.config.digest,
      RepoTags: images.filter((i) => i.manifest === img.manifestDigest).map((i) => i.name),
      RepoDigests: [],
      Created: cfg.created ?? '',
      Architecture: cfg.architecture,
      Os: cfg.os,
      ...(cfg.variant ? { Variant: cfg.variant } : {}),
      Size: m.layers.reduce((a, l) => a + l.size, 0),
      Config: cfg.config ?? {},
      RootFS: { Type: 'layers', Layers: cfg.rootfs.diff_ids },
      Metadata: { LastTagTime: '' },
      Descriptor: { mediaType: m.mediaType, digest: img.manifestDigest },
      Manifest: m,
      History: cfg.history ?? [],
    });
  }
  if (format !== undefined) for (const o of out) process.stdout.write(`${formatTemplate(format, o)}\n`);
  else process.stdout.write(`${JSON.stringify(out, null, 4)}\n`);
}

/** `kiln images|rmi|tag|import|load|save` */
export function registerImages(program: Command, cli: CliContext): void {
  program
    .command('images')
    .description('List local images')
    .option('-q, --quiet', 'only digests')
    .addOption(new Option('--format <format>', 'output format').choices(['table', 'json']).default('table'))
    .action(async (o: { quiet?: boolean; format: string }) => {
      const s = await cli.getState();
      const rows = [];
      for (const img of s.db.images.listImages()) {
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
        for (const r of rows) process.stdout.write(`${r.name.padEnd(40)} ${r.digest.slice(7, 19).padEnd(19)} ${r.created.padEnd(24)} ${formatBytes(r.size)}\n`);
      }
    });

  const inspect = (cmd: Command): Command =>
    cmd
      .description('Show images\' config and manifest as JSON (as docker image inspect)')
      .argument('<images...>')
      .option('-f, --format <template>', 'Go-template subset: {{.Field.Sub}}, {{json .Field}}')
      .action(async (names: string[], o: { format?: string }) => inspectImages(cli, names, o.format));
  inspect(program.command('inspect'));
  inspect(program.command('image').description('Image commands (docker image ...)').command('inspect'));

  program
    .command('rmi')
    .description('Remove image names (the blobs stay until prune)')
    .argument('<names...>')
    .option('-f, --force', 'remove the name even when a container (running or stopped) uses the image')
    .action(async (names: string[], o: { force?: boolean }) => {
      const s = await cli.getState();
      const containers = o.force ? [] : await listContainers(s.root);
      for (const n of names) {
        const name = normalizeRef(n);
        const users = containers.filter((c) => normalizeRef(c.config.image) === name);
        if (users.length) {
          const list = users.map((c) => `${c.name} (${c.id.slice(0, 12)}, ${c.state})`).join(', ');
          throw new BuildError('ERR_KILN_IMAGE_IN_USE', `image "${n}" is used by container${users.length > 1 ? 's' : ''} ${list}`);
        }
        if (!s.db.images.deleteImage(name)) throw new BuildError('ERR_KILN_IMAGE_NOT_FOUND', `image "${n}" is not in the local store`);
        process.stdout.write(`Untagged: ${name}\n`);
      }
    });

  program
    .command('tag')
    .description('Give an image another name')
    .argument('<source>')
    .argument('<target>')
    .action(async (source: string, target: string) => {
      validateImageName(target, 'kiln tag');
      const s = await cli.getState();
      const img = await loadLocalImage(s, source);
      s.db.images.putImage({ name: normalizeRef(target), manifest: img.manifestDigest, created: Date.now() });
    });

  program
    .command('import')
    .description('Create a one-layer image from a root filesystem tar (plain or gzip) or directory')
    .argument('<rootfs>')
    .argument('<name>')
    .action(async (rootfs: string, name: string) => {
      validateImageName(name, 'kiln import');
      const s = await cli.getState();
      const d = await importRootfs(s, { source: path.resolve(rootfs), name });
      process.stdout.write(`${d}\n`);
    });

  program
    .command('load')
    .description('Load images from an OCI layout tar/dir or a docker-save tar')
    .argument('<file>')
    .option('-t, --tag <name>', 'name the loaded image (as well as the names the archive gives it)')
    .action(async (file: string, o: { tag?: string }) => {
      if (o.tag) validateImageName(o.tag, 'kiln load -t');
      const s = await cli.getState();
      const loaded = await loadArchive({ store: s.store, source: path.resolve(file) });
      if (o.tag && loaded.length > 1) throw new BuildError('ERR_KILN_ARGUMENT', `kiln load -t: the archive holds ${loaded.length} images; -t names one (tag them with kiln tag)`);
      for (const l of loaded) {
        const names = [...l.names, ...(o.tag && !l.names.map(normalizeRef).includes(normalizeRef(o.tag)) ? [o.tag] : [])];
        let manifestDigest: Digest = l.manifest;
        const first = JSON.parse((await s.store.read(l.manifest)).toString()) as Manifest | { manifests: Array<{ digest: Digest }> };
        if ('manifests' in first) manifestDigest = first.manifests[0]!.digest;
        const m = JSON.parse((await s.store.read(manifestDigest)).toString()) as Manifest;
        const cfg = JSON.parse((await s.store.read(m.config.digest)).toString()) as ImageConfig;
        registerLayers(s, m, cfg);
        await unpackImage(s, cfg);
        for (const n of names) s.db.images.putImage({ name: normalizeRef(n), manifest: l.manifest, created: Date.now() });
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
      const s = await cli.getState();
      const images = [];
      for (const n of names) {
        const img = await loadLocalImage(s, n);
        images.push({ manifest: img.manifestDigest, names: [normalizeRef(n)] });
      }
      if (o.format === 'docker') await writeDockerArchive({ store: s.store, images, dest: path.resolve(o.output) });
      else await writeOciLayout({ store: s.store, images, dest: path.resolve(o.output) });
    });

}
