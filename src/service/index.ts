/**
 * The build service's records and resources: one async store interface (teams, API keys as sha256 hashes,
 * templates, builds and their events, usage) with a SQLite implementation (one machine, `ROOT/service.db`) and a
 * PostgreSQL one (`kiln serve --database`), the in-process build queue and the content-addressed upload store (a
 * folder, or blobs in a registry every worker reads). The
 * HTTP layer (src/server) is built on these.
 */
export { SqliteServiceStore, hashKey } from './db.js';
export { PgServiceStore } from './pg-store.js';
export { openServiceStore } from './open.js';
export type { ServiceStoreOptions } from './open.js';
export { LocalUploadStore, RegistryUploadStore, openLocalUploads, openRegistryUploads, teamUploadsRef } from './uploads.js';
export type { UploadStore, LocalBlobs, RegistryUploadsOptions } from './uploads.js';
export { BuildQueue } from './queue.js';
export { SEALED_CREDENTIALS_PATH } from './types.js';
export type { Team, TeamLimits, ApiKeyRecord, TemplateRecord, ServiceBuild, ServiceBuildStatus, ManifestEntry, ServiceStore, UsageRecord } from './types.js';
