export { MediaType, DEFAULT_PATH } from './types.js';
export type {
  Digest,
  Descriptor,
  Manifest,
  Index,
  Platform,
  ImageConfig,
  ContainerConfig,
  HealthConfig,
  HistoryEntry,
} from './types.js';
export { isDigest, sha256, digestHex, canonicalJson } from './digest.js';
export { parseImageRef, normalizeImageName, formatFullRef, formatFamiliarRef, familiarRepository, localImageName } from './ref.js';
export type { ImageRef } from './ref.js';
