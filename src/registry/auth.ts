import { readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { BuildError } from '../errors/index.js';

/** Credentials for one registry host. */
export interface Credentials {
  username?: string;
  password?: string;
  /** an OAuth2 refresh token (`identitytoken` in docker's config.json) */
  identityToken?: string;
  /** a ready bearer token (`registrytoken`) */
  registryToken?: string;
}

/** A parsed `WWW-Authenticate` challenge. */
export interface AuthChallenge {
  scheme: 'basic' | 'bearer';
  params: Record<string, string>;
}

/** Where docker keeps its config: `$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`. */
export function dockerConfigPath(env: NodeJS.ProcessEnv = process.env): string {
  return path.join(env.DOCKER_CONFIG || path.join(os.homedir(), '.docker'), 'config.json');
}

/** `https://index.docker.io/v1/` and friends → `docker.io`; `https://host:5000/x` → `host:5000`. */
export function normalizeAuthKey(key: string): string {
  const host = key.replace(/^[a-z]+:\/\//i, '').replace(/\/.*$/, '').toLowerCase();
  return host === 'index.docker.io' || host === 'registry-1.docker.io' ? 'docker.io' : host;
}

/**
 * Read the `auths` of a docker config.json: host → credentials (`auth` is base64 `user:password`; `username`/`password`,
 * `identitytoken` and `registrytoken` are read too). A missing file gives no credentials; a malformed one is an error.
 */
export function readDockerAuths(file: string = dockerConfigPath()): Map<string, Credentials> {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    return new Map();
  }
  let doc: { auths?: Record<string, Record<string, string>> };
  try {
    doc = JSON.parse(text) as typeof doc;
  } catch (cause) {
    throw new BuildError('ERR_KILN_REGISTRY_AUTH', `${file} is not valid JSON`, { cause });
  }
  const out = new Map<string, Credentials>();
  for (const [key, entry] of Object.entries(doc.auths ?? {})) {
    if (!entry || typeof entry !== 'object') continue;
    const c: Credentials = {};
    if (typeof entry.auth === 'string' && entry.auth !== '') {
      const plain = Buffer.from(entry.auth, 'base64').toString('utf8');
      const colon = plain.indexOf(':');
      if (colon < 0) throw new BuildError('ERR_KILN_REGISTRY_AUTH', `${file}: the "auth" of ${key} is not base64 of user:password`);
      c.username = plain.slice(0, colon);
      c.password = plain.slice(colon + 1);
    }
    if (typeof entry.username === 'string') c.username = entry.username;
    if (typeof entry.password === 'string') c.password = entry.password;
    if (typeof entry.identitytoken === 'string' && entry.identitytoken) c.identityToken = entry.identitytoken;
    if (typeof entry.registrytoken === 'string' && entry.registrytoken) c.registryToken = entry.registrytoken;
    out.set(normalizeAuthKey(key), c);
  }
  return out;
}

/** `--registry-auth HOST=USER:PASSWORD` → [host, credentials]. */
export function parseRegistryAuthFlag(spec: string): [string, Credentials] {
  const eq = spec.indexOf('=');
  const colon = spec.indexOf(':', eq + 1);
  if (eq <= 0 || colon < 0) {
    throw new BuildError('ERR_KILN_ARGUMENT', '--registry-auth expects HOST=USER:PASSWORD', { hint: 'e.g. --registry-auth registry.example.com=ci:s3cret' });
  }
  return [normalizeAuthKey(spec.slice(0, eq)), { username: spec.slice(eq + 1, colon), password: spec.slice(colon + 1) }];
}

/**
 * Parse a `WWW-Authenticate` header (`Bearer realm="…",service="…",scope="…"` or `Basic realm="…"`).
 * Returns undefined for schemes kiln does not speak.
 */
export function parseChallenge(header: string | null): AuthChallenge | undefined {
  if (!header) return undefined;
  const m = /^\s*(\w+)\s*(.*)$/s.exec(header);
  if (!m) return undefined;
  const scheme = m[1]!.toLowerCase();
  if (scheme !== 'basic' && scheme !== 'bearer') return undefined;
  const params: Record<string, string> = {};
  const re = /([\w-]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^,\s]*))\s*,?/g;
  let p: RegExpExecArray | null;
  while ((p = re.exec(m[2]!)) !== null) params[p[1]!.toLowerCase()] = p[2] !== undefined ? p[2].replace(/\\(.)/g, '$1') : p[3]!;
  return { scheme, params };
}

/** `Authorization: Basic …` for the credentials, if they hold a user name. */
export function basicHeader(c: Credentials | undefined): string | undefined {
  if (!c?.username) return undefined;
  return `Basic ${Buffer.from(`${c.username}:${c.password ?? ''}`).toString('base64')}`;
}
