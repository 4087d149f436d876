import type { Credentials } from './auth.js';

/** How to reach registries: which hosts speak plain HTTP and which credentials to use. */
export interface RegistryOptions {
  /** hosts (`host[:port]`) reached over plain HTTP; loopback hosts always are (as Docker does) */
  insecureHosts?: string[];
  /** credentials by host, e.g. from `--registry-auth`; they win over docker's config.json */
  credentials?: Record<string, Credentials>;
  /** docker config.json to read `auths` from (default `$DOCKER_CONFIG/config.json` or `~/.docker/config.json`); false: none */
  dockerConfig?: string | false;
  /** bytes per PATCH of a chunked upload (default 8 MiB); smaller blobs go up in one PUT */
  chunkSize?: number;
  /** parallel blob transfers of one pull or push (default 3) */
  concurrency?: number;
  /** the fetch to use (tests); default the global one */
  fetch?: typeof fetch;
}

/** What happened to one blob of a push. */
export type PushOutcome = 'exists' | 'mounted' | 'uploaded';

/** Bytes of a blob to upload, readable by range (so a failed chunk can be resent from where the registry stopped). */
export interface BlobSource {
  size: number;
  /** bytes [start, end) */
  read(start: number, end: number): Promise<Buffer>;
}
