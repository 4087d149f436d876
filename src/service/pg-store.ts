/**
 * The service's records in PostgreSQL (`kiln serve --database`): the {@link ServiceStore} the SQLite store also is,
 * on the schema of db/pg-migrations (src/pg migrates it), shared by every API node and worker. Times are milliseconds
 * since the epoch, as there; keys are stored only as their sha256.
 */
import { randomBytes } from 'node:crypto';
import { BuildError } from '../errors/index.js';
import { listenPg, type PgDatabase, type PgListener } from '../pg/index.js';
import { checkTeamName, hashKey, newApiKey, newTeamId } from './db.js';
import { SEALED_CREDENTIALS_PATH, type ApiKeyRecord, type ServiceBuild, type ServiceBuildStatus, type ServiceStore, type Team, type TeamLimits, type TemplateRecord, type UsageRecord } from './types.js';

/** The channel an appended build event is announced on (payload: the build id). */
const EVENTS_CHANNEL = 'kiln_build_events';

const ms = (col: string): string => `floor(extract(epoch FROM ${col}) * 1000)::float8`;

interface TeamRow { id: string; name: string; created: number; limits: TeamLimits }
interface BuildRow {
  id: string; team_id: string; status: ServiceBuildStatus; request: unknown; result: unknown; error: string | null;
  template: string | null; created_by_key: string | null; created: number; started: number | null; finished: number | null;
}

const TEAM_COLS = `id, name, ${ms('created_at')} AS created, limits`;
const BUILD_COLS = `id, team_id, status, request, result, error, template, created_by_key, ${ms('created_at')} AS created, ${ms('started_at')} AS started, ${ms('finished_at')} AS finished`;

function toBuild(r: BuildRow | undefined): ServiceBuild | undefined {
  if (!r) return undefined;
  return { id: r.id, teamId: r.team_id, status: r.status, request: r.request, result: r.result ?? null, error: r.error, template: r.template, startedBy: r.created_by_key, created: r.created, started: r.started, finished: r.finished };
}

/** The service's records on PostgreSQL, on a migrated database (`migratePg`); `close` closes the pool too. */
export class PgServiceStore implements ServiceStore {
  readonly kind = 'postgres' as const;

  private listener: Promise<PgListener> | undefined;
  private readonly watchers = new Map<string, Set<() => void>>();

  constructor(private readonly db: PgDatabase) {}

  async close(): Promise<void> {
    const l = this.listener;
    this.listener = undefined;
    await (await l?.catch(() => undefined))?.close();
    await this.db.close();
  }

  async createTeam(name: string, limits: TeamLimits = {}): Promise<Team> {
    checkTeamName(name);
    const id = newTeamId();
    const rows = await this.db.query<TeamRow>(
      `INSERT INTO teams (id, name, limits) VALUES ($1, $2, $3) ON CONFLICT (name) DO NOTHING RETURNING ${TEAM_COLS}`, [id, name, JSON.stringify(limits)]);
    if (!rows[0]) throw new BuildError('ERR_KILN_SERVICE_EXISTS', `team "${name}" already exists`);
    return rows[0];
  }

  async getTeam(id: string): Promise<Team | undefined> {
    return (await this.db.query<TeamRow>(`SELECT ${TEAM_COLS} FROM teams WHERE id = $1`, [id]))[0];
  }

  async getTeamByName(name: string): Promise<Team | undefined> {
    return (await this.db.query<TeamRow>(`SELECT ${TEAM_COLS} FROM teams WHERE name = $1`, [name]))[0];
  }

  async listTeams(): Promise<Team[]> {
    return this.db.query<TeamRow>(`SELECT ${TEAM_COLS} FROM teams ORDER BY name`);
  }

  async setTeamLimits(id: string, limits: TeamLimits): Promise<void> {
    await this.db.query('UPDATE teams SET limits = $2 WHERE id = $1', [id, JSON.stringify(limits)]);
  }

  /** A new key for the team: returned once, stored only as its sha256. */
  async createKey(teamId: string): Promise<{ id: string; key: string }> {
    const { id, key } = newApiKey();
    await this.db.query('INSERT INTO api_keys (id, team_id, hash, prefix) VALUES ($1, $2, $3, $4)', [id, teamId, hashKey(key), key.slice(0, 14)]);
    return { id, key };
  }

  async listKeys(teamId?: string): Promise<ApiKeyRecord[]> {
    const rows = await this.db.query<{ id: string; team_id: string; team: string; created: number; revoked: number | null }>(
      `SELECT k.id, k.team_id, t.name AS team, ${ms('k.created_at')} AS created, ${ms('k.revoked_at')} AS revoked
         FROM api_keys k JOIN teams t ON t.id = k.team_id WHERE $1::text IS NULL OR k.team_id = $1 ORDER BY k.created_at, k.id`, [teamId ?? null]);
    return rows.map((r) => ({ id: r.id, teamId: r.team_id, team: r.team, created: r.created, revoked: r.revoked }));
  }

  async revokeKey(id: string): Promise<boolean> {
    const rows = await this.db.query('UPDATE api_keys SET revoked_at = now() WHERE id = $1 AND revoked_at IS NULL RETURNING id', [id]);
    return rows.length > 0;
  }

  /** The team of a valid (known, not revoked) key, else undefined; notes when the key was last used. */
  async authenticate(key: string): Promise<Team | undefined> {
    const rows = await this.db.query<TeamRow>(
      `WITH k AS (UPDATE api_keys SET last_used_at = now() WHERE hash = $1 AND revoked_at IS NULL RETURNING team_id)
       SELECT ${TEAM_COLS} FROM teams WHERE id = (SELECT team_id FROM k)`, [hashKey(key)]);
    return rows[0];
  }

  async putTemplate(rec: Omit<TemplateRecord, 'created' | 'updated'> & { sizeBytes?: number }): Promise<void> {
    await this.db.transaction(async (c) => {
      const t = await c.query<{ id: string }>(
        `INSERT INTO templates (id, team_id, name) VALUES ($1, $2, $3)
           ON CONFLICT (team_id, name) DO UPDATE SET updated_at = now() RETURNING id`,
        [`tp${randomBytes(6).toString('hex')}`, rec.teamId, rec.name]);
      await c.query(
        `INSERT INTO template_tags (template_id, tag, build_id, image_digest, size_bytes) VALUES ($1, $2, $3, $4, $5)
           ON CONFLICT (template_id, tag) DO UPDATE SET build_id = EXCLUDED.build_id, image_digest = EXCLUDED.image_digest,
             size_bytes = EXCLUDED.size_bytes, updated_at = now()`,
        [t.rows[0]!.id, rec.tag, rec.buildId || null, rec.digest, rec.sizeBytes ?? 0]);
    });
  }

  async listTemplates(teamId: string, name?: string): Promise<TemplateRecord[]> {
    const rows = await this.db.query<{ name: string; tag: string; digest: string; build_id: string | null; created: number; updated: number }>(
      `SELECT t.name, g.tag, g.image_digest AS digest, g.build_id, ${ms('g.created_at')} AS created, ${ms('g.updated_at')} AS updated
         FROM templates t JOIN template_tags g ON g.template_id = t.id
        WHERE t.team_id = $1 AND ($2::text IS NULL OR t.name = $2) ORDER BY t.name, g.tag`, [teamId, name ?? null]);
    return rows.map((r) => ({ teamId, name: r.name, tag: r.tag, digest: r.digest, buildId: r.build_id ?? '', created: r.created, updated: r.updated }));
  }

  /** Delete one tag, or every tag of the template; returns the tags deleted. A template left without tags goes. */
  async deleteTemplate(teamId: string, name: string, tag?: string): Promise<number> {
    return this.db.transaction(async (c) => {
      const del = await c.query(
        `DELETE FROM template_tags g USING templates t
          WHERE g.template_id = t.id AND t.team_id = $1 AND t.name = $2 AND ($3::text IS NULL OR g.tag = $3)`, [teamId, name, tag ?? null]);
      await c.query(
        `DELETE FROM templates t WHERE t.team_id = $1 AND t.name = $2
           AND NOT EXISTS (SELECT 1 FROM template_tags g WHERE g.template_id = t.id)`, [teamId, name]);
      return del.rowCount ?? 0;
    });
  }

  async createBuild(b: { id: string; teamId: string; request: unknown; template: string | null; createdByKey?: string }): Promise<void> {
    await this.db.query(
      "INSERT INTO builds (id, team_id, status, request, template, created_by_key) VALUES ($1, $2, 'queued', $3, $4, $5)",
      [b.id, b.teamId, JSON.stringify(b.request ?? null), b.template, b.createdByKey ?? null]);
  }

  /** Mark a build running (on `worker`, when given), counting the attempt: a lost worker's build runs again. */
  async setBuildRunning(id: string, worker?: string): Promise<void> {
    await this.db.query("UPDATE builds SET status = 'running', started_at = now(), worker = $2, attempt = attempt + 1 WHERE id = $1", [id, worker ?? null]);
  }

  async finishBuild(id: string, status: ServiceBuildStatus, result: unknown, error: string | null): Promise<void> {
    await this.db.query('UPDATE builds SET status = $2, result = $3, error = $4, finished_at = now(), request = request #- $5::text[] WHERE id = $1',
      [id, status, result === null || result === undefined ? null : JSON.stringify(result), error, [...SEALED_CREDENTIALS_PATH]]);
  }

  /** A build of this team (another team's id is not found). */
  async getBuild(teamId: string, id: string): Promise<ServiceBuild | undefined> {
    return toBuild((await this.db.query<BuildRow>(`SELECT ${BUILD_COLS} FROM builds WHERE id = $1 AND team_id = $2`, [id, teamId]))[0]);
  }

  async listBuilds(status: ServiceBuildStatus[]): Promise<ServiceBuild[]> {
    const rows = await this.db.query<BuildRow>(`SELECT ${BUILD_COLS} FROM builds WHERE status = ANY($1::text[]) ORDER BY created_at, id`, [status]);
    return rows.map((r) => toBuild(r)!);
  }

  async lastBuildOf(teamId: string, template: string): Promise<ServiceBuild | undefined> {
    return toBuild((await this.db.query<BuildRow>(
      `SELECT ${BUILD_COLS} FROM builds WHERE team_id = $1 AND template = $2 ORDER BY created_at DESC, id DESC LIMIT 1`, [teamId, template]))[0]);
  }

  /** Append one event (its JSON text is kept byte for byte) and NOTIFY the nodes following the build. */
  async appendEvent(buildId: string, seq: number, data: string): Promise<void> {
    await this.db.query(
      `WITH e AS (INSERT INTO build_events (build_id, seq, data) VALUES ($1, $2, $3::json) RETURNING build_id)
       SELECT pg_notify('${EVENTS_CHANNEL}', build_id) FROM e`, [buildId, seq, data]);
  }

  /**
   * Be told when an event of the build was appended anywhere: one LISTEN connection per store, opened on first use.
   * If it cannot be opened the returned function still works and nothing is told (the caller's polling goes on).
   */
  async watchEvents(buildId: string, onChange: () => void): Promise<() => void> {
    const set = this.watchers.get(buildId) ?? new Set<() => void>();
    set.add(onChange);
    this.watchers.set(buildId, set);
    const stop = (): void => {
      set.delete(onChange);
      if (set.size === 0 && this.watchers.get(buildId) === set) this.watchers.delete(buildId);
    };
    this.listener ??= listenPg(this.db, {
      channel: EVENTS_CHANNEL,
      onNotify: (id) => this.watchers.get(id)?.forEach((f) => f()),
      onReconnect: () => this.watchers.forEach((s) => s.forEach((f) => f())),
    });
    await this.listener.catch(() => {
      this.listener = undefined; // tried again by the next watcher
    });
    return stop;
  }

  /** Events of a build after `afterSeq` (SSE resumption). */
  async eventsAfter(buildId: string, afterSeq: number): Promise<Array<{ seq: number; data: string }>> {
    return this.db.query<{ seq: number; data: string }>('SELECT seq, data::text AS data FROM build_events WHERE build_id = $1 AND seq > $2 ORDER BY seq', [buildId, afterSeq]);
  }

  async lastEventSeq(buildId: string): Promise<number> {
    const rows = await this.db.query<{ m: number | null }>('SELECT max(seq) AS m FROM build_events WHERE build_id = $1', [buildId]);
    return rows[0]?.m ?? 0;
  }

  /** Record a metered quantity (build seconds, bytes pushed, ...). */
  async addUsage(u: UsageRecord): Promise<void> {
    if (!(u.quantity >= 0)) throw new BuildError('ERR_KILN_ARGUMENT', `usage ${u.kind}: the quantity must be 0 or more, not ${u.quantity}`);
    await this.db.query('INSERT INTO usage (team_id, build_id, kind, quantity) VALUES ($1, $2, $3, $4)', [u.teamId, u.buildId ?? null, u.kind, u.quantity]);
  }

  /** Sum of a team's usage of one kind since `sinceMs` (default: all time). */
  async usageOf(teamId: string, kind: string, sinceMs = 0): Promise<number> {
    const rows = await this.db.query<{ s: number }>(
      'SELECT coalesce(sum(quantity), 0)::float8 AS s FROM usage WHERE team_id = $1 AND kind = $2 AND at >= to_timestamp($3 / 1000.0)', [teamId, kind, sinceMs]);
    return rows[0]!.s;
  }

  /** A team's usage of one kind per build, each with the time of its last row, oldest first. */
  async usageTimeline(teamId: string, kind: string): Promise<Array<{ buildId: string | null; quantity: number; at: number }>> {
    const rows = await this.db.query<{ build_id: string | null; q: number; at: number }>(
      `SELECT build_id, sum(quantity)::float8 AS q, ${ms('max(at)')} AS at FROM usage WHERE team_id = $1 AND kind = $2
        GROUP BY build_id ORDER BY max(at), build_id`, [teamId, kind]);
    return rows.map((r) => ({ buildId: r.build_id, quantity: r.q, at: r.at }));
  }

  /** Sums of a team's usage per kind since `sinceMs` (default: all time). */
  async usageByKind(teamId: string, sinceMs = 0): Promise<Record<string, number>> {
    const rows = await this.db.query<{ kind: string; s: number }>(
      'SELECT kind, sum(quantity)::float8 AS s FROM usage WHERE team_id = $1 AND at >= to_timestamp($2 / 1000.0) GROUP BY kind ORDER BY kind', [teamId, sinceMs]);
    return Object.fromEntries(rows.map((r) => [r.kind, r.s]));
  }
}
