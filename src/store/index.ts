export type { BlobInfo, BlobWriter, BlobProvider, BlobIngester, BlobManager, ContentStore } from './types.js';
export { createLocalStore, cleanIngest } from './local/local-store.js';
