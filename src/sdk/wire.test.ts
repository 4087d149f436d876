import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { convertDockerfile, programStepFromText, programStepText, type ConvertOptions, type ProgramStep } from '../frontend/dockerfile/convert/index.js';
import { renderCommand, type Command } from '../frontend/dockerfile/instructions/index.js';
import { definitionDigests, type BuildGraph } from '../graph/index.js';
import type { ImageConfig } from '../oci/index.js';
import { prepareTemplateBuild, Template, type TemplateFinal } from './index.js';
import type { TemplateData } from './types.js';

const images: ConvertOptions['images'] = {
  resolve: async (ref) => {
    const config: ImageConfig = { architecture: 'amd64', os: 'linux', config: { Env: ['PATH=/usr/bin:/bin'], WorkingDir: '/' }, rootfs: { type: 'layers', diff_ids: [] } };
    return { manifest: `sha256:${'a'.repeat(64)}`, config, ref };
  },
};

const dataOf = (t: TemplateFinal): TemplateData => (t as unknown as Record<symbol, TemplateData>)[Symbol.for('kiln.template.data')]!;

/** The one instruction a text parses to (the Dockerfile parser, then parseInstruction). */
function parseOne(text: string): Command {
  const { commands } = programStepFromText({ instructions: text });
  assert.equal(commands.length, 1, `one instruction in ${JSON.stringify(text)}`);
  return commands[0]!;
}

const unlocated = (c: Command): Omit<Command, 'location'> => {
  const { location: _location, ...rest } = c;
  return rest;
};

/** Templates whose values are hostile to Dockerfile and shell quoting. */
const HOSTILE: Array<[string, () => TemplateFinal]> = [
  ['variables, quotes, backslashes', () => Template().fromDebianImage()
    .runCmd('echo $HOME ${X:-y} "$PATH"')
    .runCmd(`echo 'single' "double" back\\slash \\"escaped\\" it's`)
    .runCmd('printf "%s\\n" a\\ b', { user: 'nobody' })
    .setEnvs({ A: 'x = y z', B: `it's "q" \\ $HOME \${X:-y}`, C: 'a=b=c', D: '', E: 'ünï 日本 🙂' })
    .setStartCmd(['python3', '-c', 'print("hi \\"there\\"")\nprint(\'$HOME\')'], `curl -fs "http://localhost:8000/?a=1&b='2'"`)],
  ['newlines in a runCmd script', () => Template().fromPythonImage()
    .runCmd('set -e\necho "one $HOME"\ncat <<EOF\nin a heredoc\nEOF\necho \'KILN_EOF\'\nKILN_EOF\necho done', { user: 'root' })
    .pipInstall({ requirements: 'reqs/my reqs.txt' })
    .runCmd(['echo a', 'echo "b c"'], { caches: ['pip'] })],
  ['spaces and unicode in paths', () => Template().fromDebianImage()
    .copy(['dir with spaces/a b.txt', 'ünï.txt'], '/dst with space', { owner: '1000:1000', mode: 0o640 })
    .copy('plain', '/plain/')
    .copy('$weird[1].txt', '/x/')
    .setWorkdir('/srv/my app')
    .makeDir(['/a b', "/it's"], { mode: 0o755 })
    .makeSymlink('/a b', '/c d')
    .rename("/it's", '/"q"')
    .remove('/a b/*', { recursive: true, force: true })
    .gitClone('https://example.com/r.git?x=1&y=2', '/src dir', { branch: 'feat/ü', depth: 1 })
    .setReadyCmd('test -f "/srv/my app/ready"')],
];

async function graphOf(data: TemplateData, steps: (p: ProgramStep[]) => ProgramStep[], opts: Parameters<typeof prepareTemplateBuild>[1] = {}): Promise<BuildGraph> {
  const p = await prepareTemplateBuild(data, opts);
  await p.cleanup();
  return convertDockerfile({ text: p.baseText, steps: steps(p.steps), file: 'template.ts.Dockerfile', buildArgs: {}, images });
}

describe('SDK steps as text and back (the local hand-off)', () => {
  for (const [name, make] of HOSTILE) {
    for (const opts of [{}, { env: { PIP_INDEX_URL: 'http://127.0.0.1:9/?a=1 b' }, caBundle: '/etc/ssl/my certs/ca.crt' }]) {
      const label = `${name}${Object.keys(opts).length ? ' (build env, CA bundle)' : ''}`;

      test(`parse(renderCommand(cmd)) is cmd, location aside: ${label}`, async () => {
        const data = dataOf(make());
        const p = await prepareTemplateBuild(data, opts);
        await p.cleanup();
        const commands = p.steps.flatMap((s) => s.commands);
        assert.ok(commands.length >= data.steps.length, 'every step has its records');
        for (const cmd of commands) assert.deepEqual(unlocated(parseOne(renderCommand(cmd))), unlocated(cmd), renderCommand(cmd));
      });

      test(`every step crosses as text, and the graph built from the text has the records' definitions: ${label}`, async () => {
        const data = dataOf(make());
        const records = await graphOf(data, (s) => s, opts);
        const text = await graphOf(data, (steps) => steps.map((s) => {
          const wire = programStepText(s);
          assert.ok(wire, `step carried as text: ${s.commands.map(renderCommand).join(' | ')}`);
          return programStepFromText(JSON.parse(JSON.stringify(wire)));
        }), opts);
        const defs = (g: BuildGraph): string[] => { const d = definitionDigests(g.vertices, g.order); return g.order.map((id) => d.get(id)!); };
        assert.equal(records.order.length, text.order.length);
        assert.deepEqual(defs(text), defs(records));
        assert.deepEqual(text.order.map((id) => text.vertices.get(id)!.name), records.order.map((id) => records.vertices.get(id)!.name));
        assert.deepEqual(text.order.map((id) => text.vertices.get(id)!.location), records.order.map((id) => records.vertices.get(id)!.location));
        assert.deepEqual(text.history.map((h) => h.createdBy), records.history.map((h) => h.createdBy));
        assert.deepEqual(text.target.config, records.target.config);
      });
    }
  }

  test('a step the text cannot carry exactly stays in the process (records build it as written)', async () => {
    const data = dataOf(Template().fromDebianImage().runCmd('echo trailing \\').runCmd('cat <<EOF').runCmd('echo fine'));
    const p = await prepareTemplateBuild(data);
    await p.cleanup();
    assert.deepEqual(p.steps.map((s) => programStepText(s) !== undefined), [false, false, true]);
    const g = await convertDockerfile({ text: p.baseText, steps: p.steps, file: 't', buildArgs: {}, images });
    const scripts = [...g.vertices.values()].flatMap((v) => (v.op.type === 'exec' ? [v.op.args.at(-1)] : []));
    assert.deepEqual(scripts, ['echo trailing \\', 'cat <<EOF', 'echo fine']);
  });
});
