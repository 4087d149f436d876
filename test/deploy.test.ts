/**
 * The deployment files in deploy/ are on paper (no docker engine or Kubernetes on these machines), so this checks
 * what can be checked without running them: every file parses, the pieces refer to each other consistently
 * (selectors, ports, config and secret keys, kustomization), the worker has what runc needs and a state root that is
 * a cache, and the worker's config.json is one kiln's GC accepts.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parse, parseAllDocuments } from 'yaml';
import { readConfigFile, resolveGcPolicy, resolveHistoryPolicy } from '../src/gc/index.js';
import { repoRoot } from './helpers/kiln.js';

const K8S = path.join(repoRoot, 'deploy', 'kubernetes');

interface Container {
  name: string;
  image: string;
  args?: string[];
  ports?: Array<{ containerPort: number }>;
  env?: Array<{ name: string; value?: string; valueFrom?: { secretKeyRef?: { name: string; key: string }; configMapKeyRef?: { name: string; key: string } } }>;
  securityContext?: { privileged?: boolean };
  volumeMounts?: Array<{ name: string; mountPath: string }>;
  resources?: { requests?: Record<string, string>; limits?: Record<string, string> };
}
interface Manifest {
  apiVersion: string;
  kind: string;
  metadata: { name: string };
  spec?: {
    selector?: { matchLabels?: Record<string, string> } & Record<string, string>;
    type?: string;
    ports?: Array<{ port: number; targetPort?: number }>;
    template?: { metadata: { labels: Record<string, string> }; spec: { containers: Container[]; volumes?: Array<{ name: string; emptyDir?: object; configMap?: { name: string }; secret?: { secretName: string } }> } };
  };
  data?: Record<string, string>;
}

function manifests(): Map<string, Manifest[]> {
  const out = new Map<string, Manifest[]>();
  for (const f of readdirSync(K8S).filter((n) => n.endsWith('.yaml') && n !== 'kustomization.yaml')) {
    const docs = parseAllDocuments(readFileSync(path.join(K8S, f), 'utf8'));
    for (const d of docs) assert.deepEqual(d.errors, [], `${f} parses`);
    out.set(f, docs.map((d) => d.toJS() as Manifest));
  }
  return out;
}

test('the Kubernetes manifests parse and refer to each other consistently', () => {
  const files = manifests();
  const kustomization = parse(readFileSync(path.join(K8S, 'kustomization.yaml'), 'utf8')) as { resources: string[] };
  assert.deepEqual([...kustomization.resources].sort(), [...files.keys()].sort(), 'kustomization lists every manifest');
  const all = [...files.values()].flat();
  const byKind = (kind: string): Manifest[] => all.filter((m) => m.kind === kind);
  const deployments = byKind('Deployment');
  assert.deepEqual(deployments.map((d) => d.metadata.name).sort(), ['kiln-api', 'kiln-registry', 'kiln-worker']);
  const configMaps = new Map(byKind('ConfigMap').map((c) => [c.metadata.name, c.data ?? {}]));
  const configText = readFileSync(path.join(K8S, 'config.yaml'), 'utf8');
  for (const d of deployments) {
    const labels = d.spec!.template!.metadata.labels;
    for (const [k, v] of Object.entries(d.spec!.selector!.matchLabels!)) assert.equal(labels[k], v, `${d.metadata.name}: selector matches its pods`);
    for (const c of d.spec!.template!.spec.containers) {
      assert.ok(c.resources?.requests && c.resources.limits, `${d.metadata.name}/${c.name} has requests and limits`);
      for (const e of c.env ?? []) {
        const cm = e.valueFrom?.configMapKeyRef;
        if (cm) assert.ok(configMaps.get(cm.name)?.[cm.key] !== undefined, `${d.metadata.name}: ConfigMap ${cm.name} has key ${cm.key}`);
        const sec = e.valueFrom?.secretKeyRef;
        // secrets are made outside git; config.yaml documents the command that creates each one with its keys
        if (sec) assert.match(configText, new RegExp(`create secret generic ${sec.name} [^\\n]*(\\n#[^\\n]*)*--from-literal=${sec.key}=`), `${d.metadata.name}: secret ${sec.name}/${sec.key} is documented`);
      }
    }
  }
  for (const s of byKind('Service')) {
    if (s.spec!.type === 'ExternalName') continue;
    const target = deployments.find((d) => Object.entries(s.spec!.selector!).every(([k, v]) => d.spec!.template!.metadata.labels[k] === v));
    assert.ok(target, `Service ${s.metadata.name} selects a Deployment`);
    const ports = target.spec!.template!.spec.containers.flatMap((c) => (c.ports ?? []).map((p) => p.containerPort));
    for (const p of s.spec!.ports!) assert.ok(ports.includes(p.targetPort ?? p.port), `Service ${s.metadata.name}: port ${p.targetPort ?? p.port} is a container port`);
  }
  const pg = byKind('Service').find((s) => s.metadata.name === 'kiln-postgres');
  assert.equal(pg?.spec?.type, 'ExternalName', 'PostgreSQL is an external service');
  assert.ok(!deployments.some((d) => /postgres/.test(d.spec!.template!.spec.containers[0]!.image)), 'no PostgreSQL pod in the cluster');
});

test('every kiln pod reads the one credentials key from the documented Secret, mounted where --credentials-key-file points', () => {
  const files = manifests();
  const configText = readFileSync(path.join(K8S, 'config.yaml'), 'utf8');
  for (const f of ['api.yaml', 'worker.yaml']) {
    const pod = files.get(f)!.find((m) => m.kind === 'Deployment')!.spec!.template!.spec;
    const c = pod.containers[0]!;
    const file = c.args![c.args!.indexOf('--credentials-key-file') + 1];
    assert.ok(c.args!.includes('--credentials-key-file') && file, `${f}: --credentials-key-file given`);
    const mount = c.volumeMounts!.find((m) => file!.startsWith(`${m.mountPath}/`));
    assert.ok(mount, `${f}: ${file} is inside a mounted volume`);
    const secret = pod.volumes!.find((v) => v.name === mount.name)?.secret?.secretName;
    assert.equal(secret, 'kiln-credentials-key', `${f}: the volume is the key's Secret`);
    assert.match(configText, new RegExp(`create secret generic ${secret} --from-literal=${path.basename(file!)}=`), `${f}: the Secret and its key are documented`);
  }
  const compose = parse(readFileSync(path.join(repoRoot, 'deploy', 'compose.yaml'), 'utf8')) as { services: Record<string, { command?: string[]; secrets?: string[] }>; secrets: Record<string, { file: string }> };
  for (const s of ['api', 'worker']) {
    const cmd = compose.services[s]!.command!;
    assert.equal(cmd[cmd.indexOf('--credentials-key-file') + 1], '/run/secrets/credentials_key', `compose ${s}: the key file`);
    assert.deepEqual(compose.services[s]!.secrets, ['credentials_key']);
  }
  assert.ok(compose.secrets.credentials_key?.file, 'compose: the key is a file');
});

test('a worker pod can run runc and keeps its state root as a disposable cache', () => {
  const worker = manifests().get('worker.yaml')!.find((m) => m.kind === 'Deployment')!;
  const pod = worker.spec!.template!.spec;
  const c = pod.containers[0]!;
  assert.equal(c.securityContext?.privileged, true, 'runc needs namespaces, cgroups and mount(2)');
  const stateMount = c.volumeMounts!.find((m) => m.mountPath === '/var/lib/kiln')!;
  assert.ok(pod.volumes!.find((v) => v.name === stateMount.name)?.emptyDir, 'the state root is an emptyDir (on the node disk, not overlay; lost with the pod)');
  assert.ok(c.args!.includes('--root') && c.args![c.args!.indexOf('--root') + 1] === '/var/lib/kiln');
});

test('the worker config.json in the ConfigMap is one kiln accepts', () => {
  const cm = manifests().get('config.yaml')!.find((m) => m.kind === 'ConfigMap')!;
  const root = mkdtempSync(path.join(tmpdir(), 'kiln-deploy-'));
  try {
    writeFileSync(path.join(root, 'config.json'), cm.data!['config.json']!);
    const cfg = readConfigFile(root);
    const gc = resolveGcPolicy(cfg.gc, 100 * 1000 ** 3);
    assert.equal(gc.maxUsedSpace, 40 * 1000 ** 3);
    assert.equal(gc.minFreeSpace, 10 * 1000 ** 3);
    assert.equal(resolveHistoryPolicy(cfg.history).maxBuilds, 200);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('the compose file parses, names its backups, and gives workers a privileged, non-overlay state root', () => {
  const doc = parseAllDocuments(readFileSync(path.join(repoRoot, 'deploy', 'compose.yaml'), 'utf8'));
  assert.equal(doc.length, 1);
  assert.deepEqual(doc[0]!.errors, []);
  const compose = doc[0]!.toJS() as { services: Record<string, { privileged?: boolean; volumes?: string[]; depends_on?: object; image?: string }>; volumes: Record<string, unknown> };
  assert.deepEqual(Object.keys(compose.services).sort(), ['api', 'postgres', 'registry', 'worker']);
  assert.equal(compose.services.worker!.privileged, true);
  assert.ok(compose.services.worker!.volumes!.includes('/var/lib/kiln'));
  assert.deepEqual(Object.keys(compose.volumes).sort(), ['pgdata', 'registry'], 'the two things to back up are named volumes');
  const text = readFileSync(path.join(repoRoot, 'deploy', 'compose.yaml'), 'utf8');
  assert.match(text, /pgdata:\/var\/lib\/postgresql\/data\s+# BACK UP/);
  assert.match(text, /registry:\/var\/lib\/registry\s+# BACK UP/);
});
