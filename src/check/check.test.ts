import { test } from 'node:test';
import assert from 'node:assert/strict';
import { lintDockerfile, formatFinding } from './check.js';
import type { ContextFacts } from './rules.js';
import type { BuildRecord } from '../metadata/index.js';

const lint = (text: string, context?: ContextFacts, builds?: BuildRecord[]): string[] =>
  lintDockerfile({ text, file: 'Dockerfile', ...(context ? { context } : {}), ...(builds ? { builds, dockerfilePath: '/c/Dockerfile' } : {}) }).map(formatFinding);

test('whole-context COPY before a dependency install warns; manifests first does not', () => {
  const bad = lint('FROM node\nWORKDIR /app\nCOPY . .\nRUN npm install\nRUN npm build\n');
  assert.equal(bad.filter((l) => l.startsWith('WARN')).length, 1);
  assert.match(bad[0]!, /^WARN CopyBeforeDependencyInstall: "COPY \. \." copies the whole context before "RUN npm install" \(line 4\).*COPY package\.json package-lock\.json first.* \(Dockerfile:3\)$/);
  const good = lint('FROM node\nWORKDIR /app\nCOPY package.json yarn.lock .\nRUN npm install\nCOPY . .\nRUN npm build\n');
  assert.deepEqual(good.filter((l) => l.startsWith('WARN')), []);
  assert.match(good.join('\n'), /^INFO PackageCacheMount: "RUN npm install" downloads npm packages .*target=\/root\/\.npm.* \(Dockerfile:4\)$/m);
  const mounted = lint('FROM node\nCOPY package.json .\nRUN --mount=type=cache,target=/root/.npm npm ci\n');
  assert.deepEqual(mounted, []);
  assert.match(lint('FROM debian\nCOPY . /src\nRUN apt-get update && apt-get install -y gcc\n').join('\n'), /WARN CopyBeforeDependencyInstall: .*move the apt-get step above the COPY/);
});

test('apt-get update alone warns; combined does not', () => {
  assert.match(lint('FROM debian\nRUN apt-get update\nRUN apt-get install -y curl\n').join('\n'), /^WARN PackageIndexUpdateAlone: "RUN apt-get update" .* \(Dockerfile:2\)$/m);
  assert.deepEqual(lint('FROM debian\nRUN apt-get update && apt-get install -y curl\n').filter((l) => l.startsWith('WARN')), []);
});

test('volatile ARG early, secrets in ARG/ENV (BuildKit name)', () => {
  const v = lint('FROM alpine\nARG BUILD_DATE\nRUN apk add --no-cache curl\nRUN echo $BUILD_DATE > /date\n');
  assert.match(v.join('\n'), /^WARN VolatileArgEarly: ARG BUILD_DATE .*1 RUN step .*first: line 3.* \(Dockerfile:2\)$/m);
  assert.deepEqual(lint('FROM alpine\nRUN apk add curl\nARG BUILD_DATE\nRUN echo $BUILD_DATE > /date\n').filter((l) => /VolatileArgEarly/.test(l)), []);
  const s = lint('ARG GITHUB_TOKEN\nFROM alpine\nENV DbPassword=x\nARG PUBLIC_KEY\n');
  assert.equal(s.filter((l) => /^WARN SecretsUsedInArgOrEnv/.test(l)).length, 2);
  assert.match(s.join('\n'), /ARG "GITHUB_TOKEN".*\(Dockerfile:1\)/);
  assert.match(s.join('\n'), /ENV "DbPassword".*\(Dockerfile:3\)/);
});

test('context rules: CopyIgnoredFile, NoDockerignore', () => {
  const ctx = (o: Partial<ContextFacts>): ContextFacts => ({ hasIgnoreFile: false, isIgnored: () => false, fileCount: 10, bytes: 100, bulkyDirs: [], ...o });
  assert.match(lint('FROM alpine\nCOPY secret.env /etc/\n', ctx({ hasIgnoreFile: true, isIgnored: (p) => p === 'secret.env' })).join('\n'), /^WARN CopyIgnoredFile: Attempting to Copy file "secret.env" that is excluded by .dockerignore \(Dockerfile:2\)$/m);
  assert.match(lint('FROM alpine\nCOPY . /src\n', ctx({ bulkyDirs: ['.git'] })).join('\n'), /^WARN NoDockerignore: .*including \.git.* \(Dockerfile:2\)$/m);
  assert.deepEqual(lint('FROM alpine\nCOPY . /src\n', ctx({})), [], 'a small clean context needs no .dockerignore');
  assert.deepEqual(lint('FROM alpine\nCOPY . /src\n', ctx({ hasIgnoreFile: true, bulkyDirs: ['.git'] })), []);
});

test('history: names the step that invalidates most often and its cost', () => {
  const b = (id: number, missFrom: number): BuildRecord => ({
    id: `b${id}`, started: id, finished: id + 1, status: 'success', target: '', context: '/c', dockerfile: '/c/Dockerfile', args: {}, tags: [], imageDigest: null, error: null,
    steps: [
      { name: '[1/4] FROM node', cached: true },
      { name: '[2/4] COPY . .', cached: missFrom > 1, durationMs: 100, ...(missFrom <= 1 ? { missReason: 'file content changed: x' } : {}) },
      { name: '[3/4] RUN npm install', cached: missFrom > 2, durationMs: 20_000, ...(missFrom <= 2 ? { missReason: missFrom === 2 ? 'env A changed' : 'parent step was rebuilt' } : {}) },
      { name: '[4/4] RUN npm build', cached: false, durationMs: 5000, missReason: 'parent step was rebuilt' },
    ],
  });
  const builds = [b(1, 1), b(2, 1), b(3, 1), b(4, 2)];
  const out = lint('FROM node\nCOPY . .\nRUN npm install\nRUN npm build\n', undefined, builds);
  assert.match(out.join('\n'), /^WARN FrequentlyInvalidatedStep: "COPY \. \." invalidated the cache in 3 of 4 recorded rebuilds; each time 3\.0 steps re-ran \(25\.1s on average\).* \(Dockerfile:2\)$/m);
});
