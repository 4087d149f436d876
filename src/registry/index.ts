export { RegistryClient, MANIFEST_ACCEPT, isRegistryNotFound } from './client.js';
export { parseRegistryRef, formatRegistryRef, manifestReference, isLoopbackHost } from './ref.js';
export type { RegistryRef } from './ref.js';
export { readDockerAuths, dockerConfigPath, parseRegistryAuthFlag, parseChallenge, normalizeAuthKey } from './auth.js';
export type { Credentials, AuthChallenge } from './auth.js';
export { redactUrl, registryError } from './errors.js';
export { pullImage, pushImage, pushBlobs, fetchBlobs, fetchBlobInto, fileSource, bufferSource, hostPlatform, eachLimit } from './transfer.js';
export type { PulledImage, PullImageOptions, PushImageOptions } from './transfer.js';
export type { RegistryOptions, PushOutcome, BlobSource } from './types.js';
