import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { BuildError } from '../errors/index.js';
import { SEALED_CREDENTIALS_PATH } from '../service/index.js';

/** Registry credentials of a template's base image (`fromImage(ref, { username, password })`). */
export interface BaseCredentials {
  username: string;
  password: string;
}

/**
 * Credentials sealed with the deployment's key (AES-256-GCM): what a build's stored request holds instead of them,
 * at `template.base.sealedCredentials`, until the build finishes. Bound to the team and the build (the additional
 * authenticated data), so a sealed value copied into another build does not open.
 */
export interface SealedCredentials {
  alg: 'A256GCM';
  /** base64: the 12-byte nonce, the 16-byte tag, the ciphertext of the credentials' JSON */
  iv: string;
  tag: string;
  data: string;
}

/** The field of a stored template base that holds the sealed credentials (the stores drop it when the build finishes). */
export const SEALED_FIELD = SEALED_CREDENTIALS_PATH[2];

type TemplateBase = Record<string, unknown> & { credentials?: BaseCredentials; [SEALED_FIELD]?: SealedCredentials };
interface WithBase { template?: { base: Record<string, unknown> } }

const baseOf = (spec: WithBase): TemplateBase | undefined => spec.template?.base as TemplateBase | undefined;

/** A template base's registry credentials as the client sent them (`fromImage(ref, credentials)`), if any. */
export function baseCredentials(spec: WithBase): BaseCredentials | undefined {
  const c = baseOf(spec)?.credentials;
  return c && typeof c === 'object' ? c : undefined;
}

/** The spec with its base's credentials (plain and sealed) replaced: `put` sets one field, or none. */
function withBase<T extends WithBase>(spec: T, put: Partial<TemplateBase>): T {
  const { credentials: _c, [SEALED_FIELD]: _s, ...rest } = baseOf(spec)!;
  return { ...spec, template: { ...spec.template!, base: { ...rest, ...put } } };
}

/**
 * What a build's request is stored as: the base's credentials sealed with the deployment's key (`key`), or without
 * a key left out (a one-machine server hands them to its local run in memory only). A client may not send a sealed
 * value of its own.
 */
export function requestToStore<T extends WithBase>(spec: T, o: { key?: Buffer; teamId: string; buildId: string }): T {
  const base = baseOf(spec);
  if (!base) return spec;
  if (SEALED_FIELD in base) throw new BuildError('ERR_KILN_SERVICE_REQUEST', `body.template.base.${SEALED_FIELD}: a field the server sets itself; send credentials`);
  const creds = baseCredentials(spec);
  if (!('credentials' in base)) return spec;
  if (creds && (typeof creds.username !== 'string' || typeof creds.password !== 'string')) {
    throw new BuildError('ERR_KILN_SERVICE_REQUEST', 'body.template.base.credentials: give { username, password } as strings');
  }
  if (!creds || !o.key) return withBase(spec, {});
  return withBase(spec, { [SEALED_FIELD]: sealCredentials(o.key, creds, o) });
}

/** A stored request made runnable: sealed credentials opened with this node's key (none: a coded error). */
export function requestToRun<T extends WithBase>(spec: T, o: { key?: Buffer; teamId: string; buildId: string }): T {
  const sealed = baseOf(spec)?.[SEALED_FIELD];
  if (!sealed) return spec;
  if (!o.key) throw new BuildError('ERR_KILN_SERVICE_CREDENTIALS', `build ${o.buildId}: its base image's registry credentials are sealed, and this node has no --credentials-key-file to open them`);
  return withBase(spec, { credentials: openCredentials(o.key, sealed, o) });
}

/**
 * The service-wide key of `--credentials-key-file PATH`: 32 bytes, as the file's raw bytes or written as 64 hex
 * digits or base64 (a trailing newline is fine). Every API node and worker of a deployment reads the same file.
 */
export function loadCredentialsKey(file: string): Buffer {
  let raw: Buffer;
  try {
    raw = readFileSync(file);
  } catch (err) {
    throw new BuildError('ERR_KILN_SERVICE_CREDENTIALS', `--credentials-key-file ${file}: ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (err as Error).message}`, { cause: err });
  }
  if (raw.length === 32) return raw;
  const text = raw.toString('utf8').trim();
  if (/^[0-9a-fA-F]{64}$/.test(text)) return Buffer.from(text, 'hex');
  if (/^[A-Za-z0-9+/]{43}=?$/.test(text)) {
    const b = Buffer.from(text, 'base64');
    if (b.length === 32) return b;
  }
  throw new BuildError('ERR_KILN_SERVICE_CREDENTIALS', `--credentials-key-file ${file}: the key must be 32 bytes (raw, 64 hex digits or base64), not ${raw.length} bytes of something else`);
}

const aad = (teamId: string, buildId: string): Buffer => Buffer.from(`kiln base credentials\0${teamId}\0${buildId}`);

/** Seal a build's base credentials with the deployment's key. */
export function sealCredentials(key: Buffer, creds: BaseCredentials, o: { teamId: string; buildId: string }): SealedCredentials {
  const iv = randomBytes(12);
  const c = createCipheriv('aes-256-gcm', key, iv);
  c.setAAD(aad(o.teamId, o.buildId));
  const data = Buffer.concat([c.update(JSON.stringify({ username: creds.username, password: creds.password }), 'utf8'), c.final()]);
  return { alg: 'A256GCM', iv: iv.toString('base64'), tag: c.getAuthTag().toString('base64'), data: data.toString('base64') };
}

/** Open sealed credentials of this team's build; a wrong key, another build's value or a changed byte is refused. */
export function openCredentials(key: Buffer, sealed: SealedCredentials, o: { teamId: string; buildId: string }): BaseCredentials {
  try {
    if (sealed.alg !== 'A256GCM') throw new Error(`unknown algorithm ${String(sealed.alg)}`);
    const d = createDecipheriv('aes-256-gcm', key, Buffer.from(sealed.iv, 'base64'));
    d.setAAD(aad(o.teamId, o.buildId));
    d.setAuthTag(Buffer.from(sealed.tag, 'base64'));
    const text = Buffer.concat([d.update(Buffer.from(sealed.data, 'base64')), d.final()]).toString('utf8');
    const c = JSON.parse(text) as BaseCredentials;
    return { username: String(c.username), password: String(c.password) };
  } catch (err) {
    throw new BuildError('ERR_KILN_SERVICE_CREDENTIALS', `build ${o.buildId}: the base image's registry credentials do not open with this node's --credentials-key-file (another key than the node that accepted the build?)`, { cause: err });
  }
}
