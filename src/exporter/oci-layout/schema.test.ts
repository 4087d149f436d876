// Validates what the writers produce against the OCI image-spec JSON Schemas in ../shared/conformance.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createLocalStore } from '../../store/index.js';
import { writeDockerArchive } from '../docker-archive/write-docker-archive.js';
import { makeIndex, makeTinyImage, readTar } from '../../../test/helpers/tiny-image.js';
import { writeOciLayout } from './write-oci-layout.js';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const specDir = path.resolve(repoRoot, '..', 'shared', 'conformance', 'oci-image-spec');
const schemaDir = path.join(specDir, 'schema');

type Schema = Record<string, unknown>;

/** A small JSON Schema draft-04 checker: the keywords the OCI schemas use; `$ref` is file#pointer within schemaDir. */
async function loadValidator(): Promise<(file: string, doc: unknown) => string[]> {
  const files = new Map<string, Schema>();
  for (const f of ['config-schema.json', 'content-descriptor.json', 'defs-descriptor.json', 'defs.json', 'image-index-schema.json', 'image-layout-schema.json', 'image-manifest-schema.json']) {
    files.set(f, JSON.parse(await readFile(path.join(schemaDir, f), 'utf8')));
  }
  const resolve = (ref: string, file: string): [Schema, string] => {
    const [f, pointer = ''] = ref.split('#');
    const target = f === '' ? file : f;
    let node: unknown = files.get(target);
    assert.ok(node, `unknown schema file ${target}`);
    for (const part of pointer.split('/').filter(Boolean)) node = (node as Schema)[part];
    assert.ok(node, `unresolved $ref ${ref}`);
    return [node as Schema, target];
  };
  const typeOf = (v: unknown): string[] =>
    v === null ? ['null'] : Array.isArray(v) ? ['array'] : typeof v === 'number' ? (Number.isInteger(v) ? ['integer', 'number'] : ['number']) : [typeof v];
  const check = (s: Schema, file: string, v: unknown, at: string, errs: string[]): void => {
    if (typeof s.$ref === 'string') {
      const [t, f] = resolve(s.$ref, file);
      check(t, f, v, at, errs);
      return;
    }
    if (s.type !== undefined) {
      const want = Array.isArray(s.type) ? (s.type as string[]) : [s.type as string];
      if (!want.some((w) => typeOf(v).includes(w))) {
        errs.push(`${at}: want ${want.join('|')}, got ${typeOf(v)[0]}`);
        return;
      }
    }
    if (Array.isArray(s.enum) && !s.enum.some((e) => JSON.stringify(e) === JSON.stringify(v))) errs.push(`${at}: not one of ${JSON.stringify(s.enum)}`);
    if (typeof v === 'number') {
      if (typeof s.minimum === 'number' && v < s.minimum) errs.push(`${at}: below ${s.minimum}`);
      if (typeof s.maximum === 'number' && v > s.maximum) errs.push(`${at}: above ${s.maximum}`);
    }
    if (typeof v === 'string' && typeof s.pattern === 'string' && !new RegExp(s.pattern, 'u').test(v)) errs.push(`${at}: does not match ${s.pattern}`);
    if (Array.isArray(v)) {
      if (typeof s.minItems === 'number' && v.length < s.minItems) errs.push(`${at}: fewer than ${s.minItems} items`);
      if (s.items && typeof s.items === 'object') v.forEach((x, i) => check(s.items as Schema, file, x, `${at}[${i}]`, errs));
    }
    if (v !== null && typeof v === 'object' && !Array.isArray(v)) {
      const o = v as Record<string, unknown>;
      for (const r of (s.required as string[] | undefined) ?? []) if (!(r in o)) errs.push(`${at}: missing ${r}`);
      const props = (s.properties ?? {}) as Record<string, Schema>;
      for (const [k, x] of Object.entries(o)) {
        if (props[k]) check(props[k], file, x, `${at}.${k}`, errs);
        for (const [p, ps] of Object.entries((s.patternProperties ?? {}) as Record<string, Schema>)) {
          if (new RegExp(p, 'u').test(k)) check(ps, file, x, `${at}.${k}`, errs);
        }
      }
    }
    const branches = (key: string): number => ((s[key] as Schema[] | undefined) ?? []).filter((b) => {
      const e: string[] = [];
      check(b, file, v, at, e);
      return e.length === 0;
    }).length;
    if (Array.isArray(s.oneOf) && branches('oneOf') !== 1) errs.push(`${at}: must match exactly one of oneOf`);
    if (Array.isArray(s.anyOf) && branches('anyOf') === 0) errs.push(`${at}: must match one of anyOf`);
    if (Array.isArray(s.allOf) && branches('allOf') !== s.allOf.length) errs.push(`${at}: must match allOf`);
  };
  return (file, doc) => {
    const errs: string[] = [];
    check(files.get(file)!, file, doc, '$', errs);
    return errs;
  };
}

const SCHEMA_FOR: Record<string, string> = {
  'application/vnd.oci.image.manifest.v1+json': 'image-manifest-schema.json',
  'application/vnd.oci.image.index.v1+json': 'image-index-schema.json',
  'application/vnd.oci.image.config.v1+json': 'config-schema.json',
  'application/vnd.oci.image.layout.header.v1+json': 'image-layout-schema.json',
};

test('the schema checker accepts the spec examples and rejects broken documents', async () => {
  const validate = await loadValidator();
  const cases = JSON.parse(await readFile(path.join(specDir, 'index.json'), 'utf8')).cases as Array<{ file: string; media_type: string; valid: boolean }>;
  let checked = 0;
  for (const c of cases.filter((x) => x.valid && SCHEMA_FOR[x.media_type])) {
    const doc = JSON.parse(await readFile(path.join(specDir, c.file), 'utf8'));
    assert.deepEqual(validate(SCHEMA_FOR[c.media_type], doc), [], c.file);
    checked++;
  }
  assert.ok(checked >= 10, `checked ${checked} valid upstream documents`);
  const manifest = { schemaVersion: 2, config: { mediaType: 'a/b', size: 1, digest: `sha256:${'0'.repeat(64)}` }, layers: [] };
  assert.match(validate('image-manifest-schema.json', manifest).join(), /fewer than 1/);
  assert.match(validate('image-manifest-schema.json', { ...manifest, schemaVersion: 3 }).join(), /above 2/);
  assert.match(validate('image-index-schema.json', { schemaVersion: 2, manifests: [{ mediaType: 'bad', size: 1, digest: 'x' }] }).join(), /does not match/);
  assert.match(validate('config-schema.json', { architecture: 'amd64', os: 'linux', rootfs: { type: 'layers' } }).join(), /missing diff_ids/);
  assert.match(validate('config-schema.json', { architecture: 'amd64', os: 'linux', rootfs: { diff_ids: [], type: 'layers' }, config: { Cmd: 'x' } }).join(), /exactly one of oneOf/);
});

test('every JSON document the writers produce passes the OCI schemas', async (t) => {
  const dir = await mkdtemp(path.join(tmpdir(), 'kiln-schema-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const validate = await loadValidator();
  const store = await createLocalStore({ root: path.join(dir, 'store') });
  const one = await makeTinyImage(store, { tag: 'one' });
  const two = await makeTinyImage(store, { tag: 'two', architecture: 'arm64' });
  const idx = await makeIndex(store, [one, two]);
  await writeOciLayout({ store, images: [{ manifest: one.manifest, names: ['app:1', 'example.com/x/y:z'] }, { manifest: idx, names: [] }], dest: path.join(dir, 'oci.tar') });
  await writeDockerArchive({ store, images: [{ manifest: two.manifest, names: ['app:2'] }], dest: path.join(dir, 'docker.tar') });
  for (const archive of ['oci.tar', 'docker.tar']) {
    const entries = new Map((await readTar(await readFile(path.join(dir, archive)))).map((e) => [e.header.name, e.body]));
    const json = (name: string): unknown => JSON.parse(entries.get(name)!.toString());
    assert.deepEqual(validate('image-layout-schema.json', json('oci-layout')), [], `${archive} oci-layout`);
    const index = json('index.json') as { manifests: Array<{ digest: string; mediaType: string }> };
    assert.deepEqual(validate('image-index-schema.json', index), [], `${archive} index.json`);
    const seen = new Set<string>();
    const visit = (digest: string, mediaType: string): void => {
      if (seen.has(digest)) return;
      seen.add(digest);
      const doc = json(`blobs/sha256/${digest.slice(7)}`) as { manifests?: Array<{ digest: string; mediaType: string }>; config?: { digest: string; mediaType: string } };
      assert.deepEqual(validate(SCHEMA_FOR[mediaType], doc), [], `${archive} ${mediaType} ${digest}`);
      for (const m of doc.manifests ?? []) visit(m.digest, m.mediaType);
      if (mediaType.endsWith('manifest.v1+json') && doc.config) visit(doc.config.digest, doc.config.mediaType);
    };
    for (const m of index.manifests) visit(m.digest, m.mediaType);
    assert.ok(seen.size >= 2, `${archive}: walked ${seen.size} documents`);
  }
});
