export { writeOciLayout } from './oci-layout/write-oci-layout.js';
export { writeDockerArchive } from './docker-archive/write-docker-archive.js';
export { loadArchive } from './load/load-archive.js';
export type {
  ExportImage,
  WriteArchiveOptions,
  WriteOciLayoutOptions,
  WriteDockerArchiveOptions,
  LoadArchiveOptions,
  LoadedImage,
} from './types.js';
