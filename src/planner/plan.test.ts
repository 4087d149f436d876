import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { isBuildError } from '../errors/index.js';
import { parseDockerfile } from '../frontend/dockerfile/instructions/index.js';
import { planApp, planToDockerfile, PLANNER_BASE_IMAGES, type AppFiles } from './index.js';

function files(map: Record<string, string>): AppFiles {
  return { names: new Set(Object.keys(map)), read: (n) => map[n] };
}

function dockerfile(map: Record<string, string>, base?: string): string[] {
  return planToDockerfile(planApp(files(map), base ? { base } : {})).trimEnd().split('\n');
}

describe('planApp (zero-config builds)', () => {
  test('python: setup.sh first, then requirements.txt alone, then pip with the cache, then the code', () => {
    const l = dockerfile({ 'setup.sh': 'apt-get install -y libpq5\n', 'requirements.txt': 'flask\n', 'main.py': 'print(1)\n' });
    assert.equal(l[0], `FROM ${PLANNER_BASE_IMAGES.python}`);
    assert.equal(l[1], 'WORKDIR /app');
    assert.equal(l[2], 'COPY setup.sh ./');
    assert.equal(l[3], 'RUN sh ./setup.sh');
    assert.equal(l[4], 'COPY requirements.txt ./');
    assert.match(l[5]!, /^RUN --mount=type=cache,id=lang-pip,target=\/cache\/pip.* PIP_CACHE_DIR=\/cache\/pip python3 -m pip install .*-r requirements\.txt$/);
    assert.equal(l[6], 'COPY . .');
    assert.equal(l[7], 'CMD ["python3","main.py"]');
  });

  test('python with only pyproject.toml installs its [project] dependencies before the code', () => {
    const l = dockerfile({ 'pyproject.toml': '[project]\nname = "x"\ndependencies = ["flask"]\n', 'app.py': '' });
    assert.equal(l[2], 'COPY pyproject.toml ./');
    assert.match(l[3]!, /tomllib.*pip install .*kiln-requirements\.txt/);
    assert.equal(l[4], 'COPY . .');
    assert.equal(l[5], 'CMD ["python3","app.py"]');
  });

  test('node: the lock file picks the package manager; each installs with its own cache', () => {
    const npm = dockerfile({ 'package.json': '{"scripts":{"start":"node s.js"}}', 'package-lock.json': '{}' });
    assert.equal(npm[0], `FROM ${PLANNER_BASE_IMAGES.node}`);
    assert.equal(npm[2], 'COPY package.json package-lock.json ./');
    assert.match(npm[3]!, /id=lang-npm,target=\/cache\/npm.* NPM_CONFIG_CACHE=\/cache\/npm npm ci/);
    assert.equal(npm[4], 'COPY . .');
    assert.equal(npm[5], 'CMD ["npm","start"]');
    const pnpm = dockerfile({ 'package.json': '{"main":"srv.js"}', 'pnpm-lock.yaml': '' });
    assert.equal(pnpm[2], 'COPY package.json pnpm-lock.yaml ./');
    assert.match(pnpm[3]!, /id=lang-pnpm-store,target=\/cache\/pnpm\/store.*pnpm install --frozen-lockfile/);
    assert.equal(pnpm[5], 'CMD ["node","srv.js"]');
    const yarn = dockerfile({ 'package.json': '{}', 'yarn.lock': '', 'index.js': '' });
    assert.match(yarn[3]!, /id=lang-yarn.*YARN_CACHE_FOLDER=\/cache\/yarn.*yarn install --frozen-lockfile/);
    const bare = dockerfile({ 'package.json': '{}' });
    assert.equal(bare[2], 'COPY package.json ./');
    assert.match(bare[3]!, /npm install/);
  });

  test('go and rust: download from the manifests first, compile after the code', () => {
    const go = dockerfile({ 'go.mod': 'module x\n', 'go.sum': '', 'main.go': '' });
    assert.equal(go[2], 'COPY go.mod go.sum ./');
    assert.match(go[3]!, /GOMODCACHE=\/cache\/go\/mod GOCACHE=\/cache\/go\/build go mod download$/);
    assert.equal(go[4], 'COPY . .');
    assert.match(go[5]!, /go build -o \/usr\/local\/bin\/app \.$/);
    const rust = dockerfile({ 'Cargo.toml': '[package]\nname = "hello"\nversion = "0.1.0"\n', 'Cargo.lock': '' });
    assert.equal(rust[2], 'COPY Cargo.toml Cargo.lock ./');
    assert.match(rust[3]!, /cargo fetch --locked$/);
    assert.match(rust[5]!, /cargo build --release --locked$/);
    assert.equal(rust[6], 'CMD ["./target/release/hello"]');
  });

  test('the plan parses as a Dockerfile; --base replaces the default', () => {
    const text = planToDockerfile(planApp(files({ 'requirements.txt': 'x\n' }), { base: 'python:3.11-slim' }));
    assert.match(text, /^FROM python:3\.11-slim\n/);
    const df = parseDockerfile(text, { file: 'Dockerfile' });
    assert.deepEqual(df.stages[0]!.commands.map((c) => c.name), ['workdir', 'copy', 'run', 'copy']);
  });

  test('a folder with no known manifest is a clear error', () => {
    assert.throws(() => planApp(files({ 'README.md': '' })), (e: unknown) => isBuildError(e) && e.code === 'ERR_KILN_PLAN_NO_APP');
  });
});
