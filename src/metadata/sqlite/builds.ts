import type { BuildRecord, BuildRepo } from '../builds.js';
import type { SqliteConnection } from './connection.js';

/** The BuildRepo role over the shared SQLite connection. */
export class SqliteBuilds implements BuildRepo {
  constructor(private readonly c: SqliteConnection) {}

  putBuild(b: BuildRecord): void {
    this.c.stmt(`INSERT INTO builds (id, started, finished, status, target, context, dockerfile, args, tags, image_digest, steps, error, owner)
      VALUES (@id, @started, @finished, @status, @target, @context, @dockerfile, @args, @tags, @imageDigest, @steps, @error, @owner)
      ON CONFLICT(id) DO UPDATE SET finished = excluded.finished, status = excluded.status, image_digest = excluded.image_digest,
        steps = excluded.steps, error = excluded.error`)
      .run({ ...b, owner: b.owner ?? null, args: JSON.stringify(b.args), tags: JSON.stringify(b.tags), steps: JSON.stringify(b.steps) });
  }
  /** Builds still marked running, with the process that owns each. */
  listRunningBuilds(): Array<{ id: string; owner: string | null }> {
    return this.c.stmt("SELECT id, owner FROM builds WHERE status = 'running'").all() as Array<{ id: string; owner: string | null }>;
  }
  /** Set a build's final status without rewriting its steps (a small write, for a full disk or a dead process). */
  finishBuildRecord(b: { id: string; status: BuildRecord['status']; finished: number; error: string | null }): void {
    this.c.stmt('UPDATE builds SET status = ?, finished = ?, error = ? WHERE id = ?').run(b.status, b.finished, b.error, b.id);
  }
  listBuilds(): BuildRecord[] {
    return (this.c.stmt('SELECT * FROM builds ORDER BY started DESC').all() as Record<string, unknown>[]).map(rowToBuild);
  }
  listBuildStatuses(): Array<Pick<BuildRecord, 'id' | 'status'>> {
    return this.c.stmt('SELECT id, status FROM builds ORDER BY started DESC').all() as Array<Pick<BuildRecord, 'id' | 'status'>>;
  }
  getBuild(id: string): BuildRecord | undefined {
    const r = this.c.stmt('SELECT * FROM builds WHERE id = ? OR id LIKE ? ORDER BY started DESC').get(id, `${id}%`) as Record<string, unknown> | undefined;
    return r ? rowToBuild(r) : undefined;
  }
  deleteBuild(id: string): void {
    this.c.stmt('DELETE FROM builds WHERE id = ?').run(id);
  }
}

function rowToBuild(r: Record<string, unknown>): BuildRecord {
  return {
    id: r.id as string,
    started: r.started as number,
    finished: (r.finished as number | null) ?? null,
    status: r.status as BuildRecord['status'],
    target: r.target as string,
    context: r.context as string,
    dockerfile: r.dockerfile as string,
    args: JSON.parse(r.args as string) as Record<string, string>,
    tags: JSON.parse(r.tags as string) as string[],
    imageDigest: (r.image_digest as string | null) ?? null,
    steps: JSON.parse(r.steps as string) as Array<Record<string, unknown>>,
    error: (r.error as string | null) ?? null,
    owner: (r.owner as string | null | undefined) ?? null,
  };
}
