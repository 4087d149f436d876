/**
 * The build service's records and resources: teams, API keys (sha256 hashes only), templates, the build queue
 * and the content-addressed upload store. The HTTP layer (src/server) is built on these.
 */
export { ServiceDb, hashKey } from './db.js';
export { UploadStore } from './uploads.js';
export { BuildQueue } from './queue.js';
export type { Team, TeamLimits, ApiKeyRecord, TemplateRecord, ServiceBuild, ServiceBuildStatus, ManifestEntry } from './types.js';
