import { BuildError } from '../errors/index.js';
import { isDigest, type Digest } from '../oci/index.js';

/** An image reference split for the distribution API: `localhost:5000/team/app:1.0` → host, repository, tag. */
export interface RegistryRef {
  /** registry host with optional port, as written (`docker.io` for bare names) */
  host: string;
  /** repository path inside the registry (`library/busybox` for a bare docker.io name) */
  repository: string;
  tag?: string;
  digest?: Digest;
}

const DOCKER_HUB = 'docker.io';
const COMPONENT = /^[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*$/;
const TAG = /^[\w][\w.-]{0,127}$/;
const HOST = /^(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*|\[[a-fA-F0-9:]+\])(?::[0-9]+)?$/;

/**
 * Parse an image reference as Docker does: the first component is a registry host when it holds `.` or `:` or is
 * `localhost`; otherwise the image is on docker.io (one-part names under `library/`). No tag is added.
 *
 * @example
 * parseRegistryRef('localhost:5000/app:1') // { host: 'localhost:5000', repository: 'app', tag: '1' }
 */
export function parseRegistryRef(input: string): RegistryRef {
  const bad = (why: string): BuildError =>
    new BuildError('ERR_KILN_ARGUMENT', `invalid image reference "${input}": ${why}`, { hint: 'use [HOST[:PORT]/]NAME[:TAG][@sha256:DIGEST]' });
  let rest = input.trim();
  let digest: Digest | undefined;
  const at = rest.indexOf('@');
  if (at >= 0) {
    const d = rest.slice(at + 1);
    if (!isDigest(d)) throw bad('the digest must be sha256:<64 hex>');
    digest = d;
    rest = rest.slice(0, at);
  }
  let tag: string | undefined;
  const colon = rest.lastIndexOf(':');
  if (colon > rest.lastIndexOf('/')) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
    if (!TAG.test(tag)) throw bad(`"${tag}" is not a valid tag`);
  }
  let host = DOCKER_HUB;
  let repository = rest;
  const slash = rest.indexOf('/');
  if (slash >= 0) {
    const first = rest.slice(0, slash);
    if (/[.:]/.test(first) || first === 'localhost' || first.startsWith('[')) {
      host = first;
      repository = rest.slice(slash + 1);
    }
  }
  if (!HOST.test(host)) throw bad(`"${host}" is not a valid registry host`);
  if (host === 'index.docker.io' || host === 'registry-1.docker.io') host = DOCKER_HUB;
  if (host === DOCKER_HUB && !repository.includes('/')) repository = `library/${repository}`;
  if (repository === '' || !repository.split('/').every((p) => COMPONENT.test(p))) throw bad(`"${repository}" is not a valid repository name`);
  return { host, repository, ...(tag !== undefined ? { tag } : {}), ...(digest ? { digest } : {}) };
}

/** `host/repository[:tag][@digest]`. */
export function formatRegistryRef(ref: RegistryRef): string {
  return `${ref.host}/${ref.repository}${ref.tag !== undefined ? `:${ref.tag}` : ''}${ref.digest ? `@${ref.digest}` : ''}`;
}

/** The tag or digest the manifest endpoint is addressed by (`latest` when neither is given). */
export function manifestReference(ref: RegistryRef): string {
  return ref.digest ?? ref.tag ?? 'latest';
}

/** True for hosts Docker reaches over plain HTTP without being told: localhost, 127.0.0.0/8 and ::1 (any port). */
export function isLoopbackHost(host: string): boolean {
  const name = host.startsWith('[') ? host.slice(1, host.indexOf(']')) : host.replace(/:\d+$/, '');
  return name === 'localhost' || name === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(name);
}
