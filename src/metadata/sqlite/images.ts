import type { Digest } from '../../oci/index.js';
import type { ImageRecord, ImageRepo } from '../images.js';
import type { SqliteConnection } from './connection.js';

/** The ImageRepo role over the shared SQLite connection. */
export class SqliteImages implements ImageRepo {
  constructor(private readonly c: SqliteConnection) {}

  getImage(name: string): ImageRecord | undefined {
    const r = this.c.stmt('SELECT name, manifest, created FROM images WHERE name = ?').get(name) as
      | { name: string; manifest: Digest; created: number }
      | undefined;
    return r;
  }
  listImages(): ImageRecord[] {
    return this.c.stmt('SELECT name, manifest, created FROM images ORDER BY name').all() as ImageRecord[];
  }
  putImage(rec: ImageRecord): void {
    this.c.stmt('INSERT INTO images (name, manifest, created) VALUES (?, ?, ?) ON CONFLICT(name) DO UPDATE SET manifest = excluded.manifest, created = excluded.created')
      .run(rec.name, rec.manifest, rec.created);
  }
  deleteImage(name: string): boolean {
    return this.c.stmt('DELETE FROM images WHERE name = ?').run(name).changes > 0;
  }
}
