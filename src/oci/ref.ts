import { BuildError } from '../errors/index.js';
import { isDigest } from './digest.js';
import type { Digest } from './types.js';

/**
 * A parsed image reference such as `docker.io/library/busybox:latest` or `localhost:5000/a/b@sha256:...`: the one
 * reference grammar of kiln (image names, FROM, pull/push, exporters, the registry client).
 */
export interface ImageRef {
  /** Registry host with optional port, e.g. `docker.io`. */
  domain: string;
  /** Repository path inside the registry, e.g. `library/busybox`. */
  path: string;
  tag?: string;
  digest?: Digest;
}

const DEFAULT_DOMAIN = 'docker.io';
const COMPONENT_RE = /^[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*$/;
const DOMAIN_RE = /^(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*|\[[a-fA-F0-9:]+\])(?::[0-9]+)?$/;
const TAG_RE = /^[\w][\w.-]{0,127}$/;
const MAX_NAME = 255;

/**
 * Parse an image name the way Docker does: a bare `name` is on docker.io, a one-part docker.io name gets `library/`,
 * and no default tag is added (see {@link normalizeImageName}). Throws ERR_KILN_ARGUMENT when the name is invalid.
 * */
export function parseImageRef(input: string): ImageRef {
  const bad = (why: string): BuildError =>
    new BuildError('ERR_KILN_ARGUMENT', `invalid image name "${input}": ${why}`, {
      hint: 'use NAME[:TAG] or HOST/NAME[:TAG], lowercase, e.g. example.com/team/app:1.0',
    });
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
    if (!TAG_RE.test(tag)) throw bad('the tag may hold only letters, digits, "_", "." and "-" (at most 128)');
  }
  if (rest === '') throw bad('the name is empty');
  let domain = DEFAULT_DOMAIN;
  let path = rest;
  const slash = rest.indexOf('/');
  if (slash >= 0) {
    const first = rest.slice(0, slash);
    if (/[.:]/.test(first) || first === 'localhost' || first.startsWith('[') || first.toLowerCase() !== first) {
      domain = first;
      path = rest.slice(slash + 1);
    }
  }
  if (!DOMAIN_RE.test(domain)) throw bad(`"${domain}" is not a valid registry host`);
  if (domain === 'index.docker.io' || domain === 'registry-1.docker.io') domain = DEFAULT_DOMAIN;
  if (domain === DEFAULT_DOMAIN && !path.includes('/')) path = `library/${path}`;
  for (const part of path.split('/')) {
    if (!COMPONENT_RE.test(part)) {
      throw bad(part.toLowerCase() !== part && COMPONENT_RE.test(part.toLowerCase()) ? 'the repository name must be lowercase' : `"${part}" is not a valid path component`);
    }
  }
  if (domain.length + 1 + path.length > MAX_NAME) throw bad(`the repository name is longer than ${MAX_NAME} characters`);
  return { domain, path, ...(tag === undefined ? {} : { tag }), ...(digest === undefined ? {} : { digest }) };
}

/** Parse and add the `latest` tag when the name has neither tag nor digest. */
export function normalizeImageName(input: string): ImageRef {
  const ref = parseImageRef(input);
  return ref.tag === undefined && ref.digest === undefined ? { ...ref, tag: 'latest' } : ref;
}

/** `domain/path[:tag][@digest]`, e.g. `docker.io/library/busybox:latest`. */
export function formatFullRef(ref: ImageRef): string {
  return `${ref.domain}/${ref.path}${suffix(ref)}`;
}

/** The short form Docker shows: `busybox:latest`, `user/app:1`, `example.com/app:1`. */
export function formatFamiliarRef(ref: ImageRef): string {
  return `${familiarRepository(ref)}${suffix(ref)}`;
}

/** The repository part of the short form, without tag or digest. */
export function familiarRepository(ref: ImageRef): string {
  if (ref.domain !== DEFAULT_DOMAIN) return `${ref.domain}/${ref.path}`;
  return ref.path.startsWith('library/') && ref.path.indexOf('/', 'library/'.length) === -1
    ? ref.path.slice('library/'.length)
    : ref.path;
}

/**
 * The name an image is stored under locally: the short form with `latest` added when there is neither tag nor
 * digest (`docker.io/library/busybox` → `busybox:latest`). A name that does not parse is returned trimmed, unchanged:
 * looking it up misses, and where a name is given it is checked first (validateImageName).
 *
 * @example
 * localImageName('index.docker.io/library/alpine') // 'alpine:latest'
 */
export function localImageName(input: string): string {
  try {
    return formatFamiliarRef(normalizeImageName(input));
  } catch {
    return input.trim();
  }
}

function suffix(ref: ImageRef): string {
  return `${ref.tag === undefined ? '' : `:${ref.tag}`}${ref.digest === undefined ? '' : `@${ref.digest}`}`;
}
