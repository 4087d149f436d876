/**
 * `kiln serve`: the HTTP API (hono + zod schemas, OpenAPI at /openapi.json), API-key auth, builds and templates as
 * resources, SSE events, content-addressed uploads, the read-only OCI `/v2/` endpoint, metrics, and the local
 * hand-off socket plain `kiln build` uses.
 */
export { startServer } from './server.js';
export type { RunningServer } from './server.js';
export { loadServerConfig, parseListen, DEFAULT_LISTEN } from './config.js';
export type { ServerConfig, ServeFlags, BuildLimits } from './config.js';
export { serverBuildOptions } from './options.js';
export type { ServerBuildRequest } from './options.js';
export { LocalBuildSchema } from './local.js';
export type { LocalBuild } from './local.js';
export { openServiceStore } from '../service/index.js';
