import type { Digest } from '../oci/index.js';

export interface ImageRecord {
  name: string;
  manifest: Digest;
  created: number;
}

/** Image names and the manifest each points at (`images` table). */
export interface ImageRepo {
  getImage(name: string): ImageRecord | undefined;
  /** by name */
  listImages(): ImageRecord[];
  /** insert or move a name to another manifest */
  putImage(rec: ImageRecord): void;
  /** false when there was no such name */
  deleteImage(name: string): boolean;
}
