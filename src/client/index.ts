/**
 * The HTTP client of `kiln serve`, used by the CLI (`--host`, `kiln template ls|inspect|rm`, the local hand-off)
 * and by the SDK's remote `Template.build`: context manifests, content-addressed uploads, builds and their events.
 */
export { KilnClient } from './client.js';
export type { ClientOptions, UploadReport } from './client.js';
export { computeManifest } from './manifest.js';
export type { ContextManifest } from './manifest.js';
export { runRemoteBuild, remoteTarget, digestCacheFileFor } from './remote-build.js';
export type { RemoteBuildOptions, RemoteBuildOutcome } from './remote-build.js';
export { parseEndpoint, request } from './http.js';
export type { Endpoint, HttpResponse } from './http.js';
export { readAll, responseError } from './response.js';
export type { AnswerBody } from './response.js';
export { connectUnix, NoAnswerError, requestOn } from './unix-http.js';
export type { SocketAnswer } from './unix-http.js';
export type { ContextManifestEntry, RemoteBuild, RemoteBuildSpec, RemoteEvent, RemoteStep, RemoteTemplate, RemoteTemplateDetail, RemoteTemplateTag } from './types.js';
