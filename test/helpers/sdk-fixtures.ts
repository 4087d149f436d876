/**
 * Fixtures for the SDK integration tests: Debian bases with python3+pip and nodejs+npm (debootstrap, cached under
 * /var/tmp), a tiny Python package index on loopback serving wheels made here, and a counting npm proxy in front of
 * the registry this machine is configured with. No host name is ever written to a file: the registry, the mirror
 * and the CA bundle are read from this machine's configuration at run time.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { repoRoot } from './kiln.js';

/** The two bases: debootstrap package lists, the cached tar. */
const BASES = {
  python: { tar: '/var/tmp/kiln-test-sdk-python.tar', debootstrap: 'python3,python3-pip', apt: '' },
  // npm's ~300 dependencies do not configure in debootstrap's single pass: apt installs it afterwards
  node: { tar: '/var/tmp/kiln-test-sdk-node.tar', debootstrap: 'nodejs,ca-certificates', apt: 'npm' },
} as const;

/** Make (or reuse) a base rootfs tar; the first run takes minutes (debootstrap), later runs reuse the tar. */
export function sdkBaseTar(kind: keyof typeof BASES): string {
  const b = BASES[kind];
  if (existsSync(b.tar)) return b.tar;
  const r = spawnSync('bash', [path.join(repoRoot, 'test', 'helpers', 'make-sdk-base.sh'), b.tar, b.debootstrap, b.apt], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`making the ${kind} base failed: ${r.stderr}`);
  return b.tar;
}

/** One request the fixture servers answered. */
export interface ServedRequest {
  path: string;
  status: number;
  bytes: number;
}

/** A stand-in distribution for the loopback index: a wheel holding a module and `size` bytes of random data. */
export interface WheelSpec {
  name: string;
  version: string;
  size: number;
}

/** Write a wheel (a zip: module, data file, dist-info with METADATA/WHEEL/RECORD) with python3's zipfile. */
function writeWheels(dir: string, specs: WheelSpec[]): Map<string, { file: string; sha256: string }> {
  const script = `
import base64, hashlib, json, os, sys, zipfile
out, specs = sys.argv[1], json.loads(sys.argv[2])
for s in specs:
    name, ver, size = s['name'], s['version'], s['size']
    mod = name.replace('-', '_')
    files = {
        f'{mod}/__init__.py': f'__version__ = "{ver}"\\n'.encode(),
        f'{mod}/data.bin': os.urandom(size),
        f'{mod}-{ver}.dist-info/METADATA': f'Metadata-Version: 2.1\\nName: {name}\\nVersion: {ver}\\n'.encode(),
        f'{mod}-{ver}.dist-info/WHEEL': b'Wheel-Version: 1.0\\nGenerator: kiln-tests\\nRoot-Is-Purelib: true\\nTag: py3-none-any\\n',
    }
    record = ''
    for p, b in files.items():
        h = base64.urlsafe_b64encode(hashlib.sha256(b).digest()).rstrip(b'=').decode()
        record += f'{p},sha256={h},{len(b)}\\n'
    record += f'{mod}-{ver}.dist-info/RECORD,,\\n'
    files[f'{mod}-{ver}.dist-info/RECORD'] = record.encode()
    with zipfile.ZipFile(os.path.join(out, f'{mod}-{ver}-py3-none-any.whl'), 'w', zipfile.ZIP_STORED) as z:
        for p, b in files.items():
            z.writestr(p, b)
`;
  execFileSync('python3', ['-c', script, dir, JSON.stringify(specs)]);
  const out = new Map<string, { file: string; sha256: string }>();
  for (const s of specs) {
    const file = `${s.name.replace(/-/g, '_')}-${s.version}-py3-none-any.whl`;
    out.set(s.name.toLowerCase(), { file, sha256: createHash('sha256').update(readFileSync(path.join(dir, file))).digest('hex') });
  }
  return out;
}

/** A PEP 503 simple index on 127.0.0.1 serving stand-in wheels, with an access log. */
export interface PyIndex {
  /** PIP_INDEX_URL */
  url: string;
  log: ServedRequest[];
  /** wheel files fetched since `since` (an index into log) */
  wheelsFetched(since?: number): ServedRequest[];
  close(): Promise<void>;
}

export async function startPyIndex(specs: WheelSpec[]): Promise<PyIndex> {
  const dir = mkdtempSync(path.join(tmpdir(), 'kiln-pyindex-'));
  const wheels = writeWheels(dir, specs);
  const log: ServedRequest[] = [];
  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    const send = (status: number, body: Buffer | string, headers: Record<string, string>): void => {
      const buf = typeof body === 'string' ? Buffer.from(body) : body;
      res.writeHead(status, { 'content-length': String(buf.length), ...headers });
      res.end(buf);
      log.push({ path: url.pathname, status, bytes: buf.length });
    };
    const m = /^\/simple\/([^/]+)\/?$/.exec(url.pathname);
    if (m) {
      const key = m[1]!.toLowerCase().replace(/[-_.]+/g, '-');
      const w = [...wheels].find(([n]) => n.replace(/[-_.]+/g, '-') === key)?.[1];
      if (!w) return send(404, 'not found', { 'content-type': 'text/plain' });
      const html = `<!DOCTYPE html><html><body><a href="/files/${w.file}#sha256=${w.sha256}">${w.file}</a></body></html>\n`;
      return send(200, html, { 'content-type': 'text/html' });
    }
    const f = /^\/files\/([^/]+\.whl)$/.exec(url.pathname);
    if (f && readdirSync(dir).includes(f[1]!)) {
      return send(200, readFileSync(path.join(dir, f[1]!)), { 'content-type': 'application/octet-stream', 'cache-control': 'max-age=31536000, immutable' });
    }
    send(404, 'not found', { 'content-type': 'text/plain' });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}/simple/`,
    log,
    wheelsFetched: (since = 0) => log.slice(since).filter((l) => l.path.endsWith('.whl') && l.status === 200),
    close: () => new Promise<void>((r) => server.close(() => r())).then(() => rmSync(dir, { recursive: true, force: true })),
  };
}

function npmConfig(key: string): string {
  const r = spawnSync('npm', ['config', 'get', key], { encoding: 'utf8' });
  const v = (r.stdout ?? '').trim();
  return v === 'null' || v === 'undefined' ? '' : v;
}

/** The npm registry this machine uses (from `npm config get registry`). */
export function machineRegistry(): string {
  const r = npmConfig('registry') || 'https://registry.npmjs.org/';
  return r.endsWith('/') ? r : `${r}/`;
}

/** The CA bundle HTTPS clients here need (`npm config get cafile`, else Debian's bundle). */
export function machineCaBundle(): string {
  const f = npmConfig('cafile');
  return f && existsSync(f) ? f : '/etc/ssl/certs/ca-certificates.crt';
}

/** A loopback HTTP proxy in front of the machine's npm registry that counts the bytes of every response. */
export interface NpmProxy {
  /** NPM_CONFIG_REGISTRY for builds */
  url: string;
  log: ServedRequest[];
  /** package tarballs fetched since `since` */
  tarballsFetched(since?: number): ServedRequest[];
  close(): Promise<void>;
}

export async function startNpmProxy(): Promise<NpmProxy> {
  const upstream = machineRegistry();
  const ca = readFileSync(machineCaBundle());
  const log: ServedRequest[] = [];
  let base = '';
  const server = http.createServer((req, res) => {
    const rel = (req.url ?? '/').replace(/^\/+/, '');
    const target = new URL(rel, upstream);
    const client = target.protocol === 'https:' ? https : http;
    const headers: Record<string, string> = { 'accept-encoding': 'identity', 'user-agent': String(req.headers['user-agent'] ?? 'kiln-tests') };
    if (req.headers.accept) headers.accept = String(req.headers.accept);
    const up = client.request(target, { method: req.method ?? 'GET', headers, ca }, (ures) => {
      const chunks: Buffer[] = [];
      ures.on('data', (c: Buffer) => chunks.push(c));
      ures.on('end', () => {
        let body = Buffer.concat(chunks);
        const type = String(ures.headers['content-type'] ?? '');
        // tarball URLs in package documents point at the registry: send them through this proxy instead
        if (type.includes('json')) body = Buffer.from(body.toString('utf8').split(upstream).join(base));
        res.writeHead(ures.statusCode ?? 502, { 'content-type': type || 'application/octet-stream', 'content-length': String(body.length) });
        res.end(body);
        log.push({ path: `/${rel}`, status: ures.statusCode ?? 502, bytes: body.length });
      });
      ures.on('error', () => res.destroy());
    });
    up.on('error', (err) => {
      res.writeHead(502).end(String(err));
      log.push({ path: `/${rel}`, status: 502, bytes: 0 });
    });
    up.end();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
  return {
    url: base,
    log,
    tarballsFetched: (since = 0) => log.slice(since).filter((l) => /\/-\/[^/]+\.tgz$/.test(l.path) && l.status === 200),
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}

/** A unique tag, so tests sharing a state directory never collide. */
export function uniqueName(prefix: string): string {
  return `${prefix}-${randomBytes(3).toString('hex')}:latest`;
}
