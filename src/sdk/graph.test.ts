import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { convertDockerfile, type ConvertOptions } from '../frontend/dockerfile/convert/index.js';
import { renderCommand } from '../frontend/dockerfile/instructions/index.js';
import { definitionDigests, type BuildGraph } from '../graph/index.js';
import { isBuildError } from '../errors/index.js';
import type { ImageConfig } from '../oci/index.js';
import { prepareTemplateBuild, Template, type TemplateFinal } from './index.js';
import type { TemplateData } from './types.js';

const here = fileURLToPath(import.meta.url);

const images: ConvertOptions['images'] = {
  resolve: async (ref) => {
    const config: ImageConfig = { architecture: 'amd64', os: 'linux', config: { Env: ['PATH=/usr/bin:/bin', 'LANG=C.UTF-8'], WorkingDir: '/' }, rootfs: { type: 'layers', diff_ids: [] } };
    return { manifest: `sha256:${'a'.repeat(64)}`, config, ref };
  },
};

const dataOf = (t: TemplateFinal): TemplateData => (t as unknown as Record<symbol, TemplateData>)[Symbol.for('kiln.template.data')]!;

/** The template as it was built before the SDK gave the conversion its steps: the whole rendered text, lines marked. */
async function renderedGraph(data: TemplateData, opts: Parameters<typeof prepareTemplateBuild>[1] = {}): Promise<BuildGraph> {
  const p = await prepareTemplateBuild(data, opts);
  await p.cleanup();
  const graph = await convertDockerfile({ text: p.dockerfileText, file: 'template.ts.Dockerfile', buildArgs: {}, images });
  // what the engine did then: the Dockerfile lines of the skipCache() steps, matched back
  const baseLines = p.baseText.trimEnd().split('\n').length;
  let line = baseLines;
  const marked = new Set<number>();
  for (const s of p.steps) {
    const n = s.commands.map(renderCommand).join('\n').split('\n').length;
    if (s.noCache) for (let i = 1; i <= n; i++) marked.add(line + i);
    line += n;
  }
  for (const v of graph.vertices.values()) if (v.location && marked.has(v.location.line)) v.noCache = true;
  return graph;
}

async function emittedGraph(data: TemplateData, opts: Parameters<typeof prepareTemplateBuild>[1] = {}): Promise<BuildGraph> {
  const p = await prepareTemplateBuild(data, opts);
  await p.cleanup();
  return convertDockerfile({ text: p.baseText, steps: p.steps, file: 'template.ts.Dockerfile', buildArgs: {}, images });
}

const TEMPLATES: Array<[string, () => TemplateFinal]> = [
  ['every step type', () => Template().fromDebianImage()
    .aptInstall(['curl', 'git']).pipInstall(['numpy']).npmInstall('left-pad', { global: true }).bunInstall('zod').goInstall('example.com/x').cargoInstall('ripgrep')
    .runCmd('echo one').runCmd(['echo a', 'echo b'], { user: 'nobody' }).copy('app/', '/app/').copy(['a.txt', 'b.txt'], '/data', { owner: '1000', mode: 0o644 })
    .remove('/tmp/x', { recursive: true, force: true }).rename('/a', '/b').makeDir('/srv/data', { mode: 0o755 }).makeSymlink('/srv/data', '/data2')
    .setEnvs({ A: '1', B: 'two words $A' }).setWorkdir('/srv').setUser('1000').gitClone('https://example.com/r.git', '/src', { depth: 1 }).skipCache()
    .setStartCmd('python3 -m http.server 8000', 'curl -fs localhost:8000')],
  ['multi-line script, skipCache on a user-switching step', () => Template().fromPythonImage().setUser('app').runCmd('set -e\necho one\necho two', { user: 'root' }).skipCache().pipInstall({ requirements: 'req.txt' }).pipInstall('requests')],
  ['a Dockerfile base with two stages', () => Template().fromDockerfile('FROM busybox:latest AS build\nRUN echo hi > /x\nFROM debian:12-slim\nCOPY --from=build /x /x\n').runCmd('cat /x').setReadyCmd('test -f /x')],
];

describe('the SDK emits its steps into the conversion', () => {
  for (const [name, make] of TEMPLATES) {
    for (const opts of [{}, { env: { PIP_INDEX_URL: 'http://127.0.0.1:9/' }, caBundle: '/etc/ssl/certs/ca-certificates.crt' }]) {
      test(`same definitions, names and history as the rendered Dockerfile: ${name}${Object.keys(opts).length ? ' (build env, CA bundle)' : ''}`, async () => {
        const data = dataOf(make());
        const before = await renderedGraph(data, opts);
        const after = await emittedGraph(data, opts);
        const defs = (g: BuildGraph): string[] => { const d = definitionDigests(g.vertices, g.order); return g.order.map((id) => d.get(id)!); };
        assert.deepEqual(defs(after), defs(before), 'every vertex has the definition it had (so its cache key is the same)');
        assert.deepEqual(after.order.map((id) => after.vertices.get(id)!.name), before.order.map((id) => before.vertices.get(id)!.name));
        assert.deepEqual(after.order.map((id) => after.vertices.get(id)!.noCache === true), before.order.map((id) => before.vertices.get(id)!.noCache === true));
        assert.deepEqual(after.history.map((h) => h.createdBy), before.history.map((h) => h.createdBy));
        assert.deepEqual(after.target.config, before.target.config);
        assert.ok(after.order.some((id) => after.vertices.get(id)!.noCache) === data.steps.some((s) => s.skipCache));
      });
    }
  }

  test("each step's vertices carry the caller's file and line; skipCache() is the vertex's own property", async () => {
    const line = Number(new Error().stack!.split('\n')[1]!.match(/:(\d+):\d+\)?$/)![1]) + 1;
    const t = Template().fromDebianImage().runCmd('echo a').runCmd('echo b', { user: 'nobody' }).skipCache();
    const g = await emittedGraph(dataOf(t));
    const steps = g.order.map((id) => g.vertices.get(id)!).filter((v) => v.op.type !== 'source');
    assert.deepEqual(steps.map((v) => v.location), [{ file: here, line }, { file: here, line }, { file: here, line }, { file: here, line }]);
    assert.deepEqual(steps.map((v) => [v.name.replace(/^\[\d+\/\d+\] /, ''), v.noCache === true]), [
      ['RUN echo a', false], ['USER nobody', true], ['RUN echo b', true], ['USER root', true],
    ]);
  });

  test("a bad step's error names the caller's line, not a generated Dockerfile", async () => {
    const line = Number(new Error().stack!.split('\n')[1]!.match(/:(\d+):\d+\)?$/)![1]) + 1;
    const t = Template().fromDebianImage().copy('a', '/a').setEnvs({ A: '${X:?X is required}' });
    await assert.rejects(emittedGraph(dataOf(t)), (e: unknown) => isBuildError(e) && `${e.message} ${JSON.stringify(e)}`.includes(`${here}:${line}`));
  });

  test('the build-wide network shapes RUN steps as they are added; host under isolated is refused with the line', async () => {
    const p = await prepareTemplateBuild(dataOf(Template().fromDebianImage().runCmd('true')));
    const g = await convertDockerfile({ text: p.baseText, steps: p.steps, file: 't', buildArgs: {}, images, network: 'none' });
    assert.deepEqual([...g.vertices.values()].flatMap((v) => (v.op.type === 'exec' ? [v.op.network] : [])), ['none']);
    await assert.rejects(
      convertDockerfile({ text: 'FROM debian:12-slim\nRUN --network=host true\n', file: 'Dockerfile', buildArgs: {}, images, network: 'isolated' }),
      (e: unknown) => isBuildError(e) && e.code === 'ERR_KILN_NOT_SUPPORTED' && e.message.startsWith('Dockerfile:2: '),
    );
  });
});
