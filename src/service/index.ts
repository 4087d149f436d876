/**
 * The build service's records and resources: teams, API keys (sha256 hashes only), templates, the build queue
 * and the content-addressed upload store (a folder, or blobs in a registry every worker reads). The HTTP layer
 * (src/server) is built on these.
 */
export { ServiceDb, hashKey } from './db.js';
export { LocalUploadStore, RegistryUploadStore, openLocalUploads, openRegistryUploads, teamUploadsRef } from './uploads.js';
export type { UploadStore, LocalBlobs, RegistryUploadsOptions } from './uploads.js';
export { BuildQueue } from './queue.js';
export type { Team, TeamLimits, ApiKeyRecord, TemplateRecord, ServiceBuild, ServiceBuildStatus, ManifestEntry } from './types.js';
