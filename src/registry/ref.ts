import { formatFullRef, parseImageRef, type Digest } from '../oci/index.js';

/** An image reference split for the distribution API: `localhost:5000/team/app:1.0` → host, repository, tag. */
export interface RegistryRef {
  /** registry host with optional port, as written (`docker.io` for bare names) */
  host: string;
  /** repository path inside the registry (`library/busybox` for a bare docker.io name) */
  repository: string;
  tag?: string;
  digest?: Digest;
}

/**
 * Parse an image reference (the one grammar in oci's parseImageRef) into the distribution API's terms. No tag is
 * added. Throws ERR_KILN_ARGUMENT when the reference is invalid.
 *
 * @example
 * parseRegistryRef('localhost:5000/app:1') // { host: 'localhost:5000', repository: 'app', tag: '1' }
 */
export function parseRegistryRef(input: string): RegistryRef {
  const { domain, path, tag, digest } = parseImageRef(input);
  return { host: domain, repository: path, ...(tag !== undefined ? { tag } : {}), ...(digest ? { digest } : {}) };
}

/** `host/repository[:tag][@digest]`. */
export function formatRegistryRef(ref: RegistryRef): string {
  return formatFullRef({ domain: ref.host, path: ref.repository, ...(ref.tag !== undefined ? { tag: ref.tag } : {}), ...(ref.digest ? { digest: ref.digest } : {}) });
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
