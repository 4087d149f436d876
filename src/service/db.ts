import Database from 'better-sqlite3';
import { createHash, randomBytes } from 'node:crypto';
import { BuildError } from '../errors/index.js';
import { SEALED_CREDENTIALS_PATH, type Team, type TeamLimits, type ApiKeyRecord, type TemplateRecord, type ServiceBuild, type ServiceBuildStatus, type ServiceStore, type UsageRecord } from './types.js';

/** sha256 hex of an API key: the only form in which a key is stored. */
export function hashKey(key: string): string {
  return createHash('sha256').update(key, 'utf8').digest('hex');
}

const TEAM_NAME = /^[a-z0-9][a-z0-9_-]{0,62}$/;

/** The name rule of a team, checked the same way by both stores. */
export function checkTeamName(name: string): void {
  if (!TEAM_NAME.test(name)) throw new BuildError('ERR_KILN_ARGUMENT', `team name "${name}" must be 1-63 lowercase letters, digits, - or _ (starting with a letter or digit)`);
}

/** A new API key `kiln_<id>_<secret>` (the id is the part that may be shown). */
export function newApiKey(): { id: string; key: string } {
  const id = `k${randomBytes(4).toString('hex')}`;
  return { id, key: `kiln_${id}_${randomBytes(24).toString('base64url')}` };
}

export const newTeamId = (): string => `t${randomBytes(6).toString('hex')}`;

/**
 * Changes to a `service.db` made by an earlier kiln, in order; `PRAGMA user_version` counts those applied. A fresh
 * database gets the current tables from the CREATE statements above, so each step checks before it alters.
 */
const SQLITE_MIGRATIONS: Array<(db: Database.Database) => void> = [
  // 1: who started a build (the PostgreSQL schema had builds.created_by_key from its first migration)
  (db) => {
    const cols = (db.prepare('PRAGMA table_info(builds)').all() as Array<{ name: string }>).map((c) => c.name);
    if (!cols.includes('created_by_key')) db.exec('ALTER TABLE builds ADD COLUMN created_by_key TEXT');
  },
];

/**
 * Bring an open service.db up to date, each pending step in one write transaction with its version (taken before the
 * version is read, so a server and an admin command opening the same file at once migrate it once).
 */
function migrateSqlite(db: Database.Database): void {
  const step = db.transaction((): boolean => {
    const v = db.pragma('user_version', { simple: true }) as number;
    if (v >= SQLITE_MIGRATIONS.length) return false;
    SQLITE_MIGRATIONS[v]!(db);
    db.pragma(`user_version = ${v + 1}`);
    return true;
  });
  while (step.immediate()) { /* the next one */ }
}

/**
 * The service's own records on one machine (`ROOT/service.db`, SQLite): teams, API key hashes, templates (name:tag →
 * image digest), builds, their event logs and usage. Each team's images, cache records and blobs live in the team's
 * own state root, not here. The calls are synchronous underneath; the async {@link ServiceStore} shape is the one the
 * PostgreSQL store shares.
 */
export class SqliteServiceStore implements ServiceStore {
  readonly kind = 'sqlite' as const;
  private readonly db: Database.Database;

  constructor(file: string) {
    this.db = new Database(file);
    this.db.pragma('journal_mode = WAL');
    this.db.pragma('synchronous = NORMAL');
    this.db.pragma('busy_timeout = 5000');
    this.db.exec(`
      CREATE TABLE IF NOT EXISTS teams (id TEXT PRIMARY KEY, name TEXT UNIQUE NOT NULL, created INTEGER NOT NULL, limits TEXT NOT NULL DEFAULT '{}');
      CREATE TABLE IF NOT EXISTS api_keys (id TEXT PRIMARY KEY, team_id TEXT NOT NULL, hash TEXT UNIQUE NOT NULL, created INTEGER NOT NULL, revoked INTEGER);
      CREATE TABLE IF NOT EXISTS templates (team_id TEXT NOT NULL, name TEXT NOT NULL, tag TEXT NOT NULL, digest TEXT NOT NULL, build_id TEXT NOT NULL,
        created INTEGER NOT NULL, updated INTEGER NOT NULL, PRIMARY KEY (team_id, name, tag));
      CREATE TABLE IF NOT EXISTS builds (id TEXT PRIMARY KEY, team_id TEXT NOT NULL, status TEXT NOT NULL, request TEXT NOT NULL, result TEXT,
        error TEXT, template TEXT, created INTEGER NOT NULL, started INTEGER, finished INTEGER, created_by_key TEXT);
      CREATE TABLE IF NOT EXISTS build_events (build_id TEXT NOT NULL, seq INTEGER NOT NULL, data TEXT NOT NULL, PRIMARY KEY (build_id, seq));
      CREATE TABLE IF NOT EXISTS usage (team_id TEXT NOT NULL, build_id TEXT, kind TEXT NOT NULL, quantity REAL NOT NULL, at INTEGER NOT NULL);
      CREATE INDEX IF NOT EXISTS usage_team_at ON usage (team_id, kind, at);
    `);
    migrateSqlite(this.db);
  }

  async close(): Promise<void> {
    this.db.close();
  }

  async createTeam(name: string, limits: TeamLimits = {}): Promise<Team> {
    checkTeamName(name);
    if (this.teamByName(name)) throw new BuildError('ERR_KILN_SERVICE_EXISTS', `team "${name}" already exists`);
    const team: Team = { id: newTeamId(), name, created: Date.now(), limits };
    this.db.prepare('INSERT INTO teams (id, name, created, limits) VALUES (?, ?, ?, ?)').run(team.id, name, team.created, JSON.stringify(limits));
    return team;
  }

  private team(row: { id: string; name: string; created: number; limits: string } | undefined): Team | undefined {
    return row ? { id: row.id, name: row.name, created: row.created, limits: JSON.parse(row.limits) as TeamLimits } : undefined;
  }

  private teamById(id: string): Team | undefined {
    return this.team(this.db.prepare('SELECT * FROM teams WHERE id = ?').get(id) as never);
  }

  private teamByName(name: string): Team | undefined {
    return this.team(this.db.prepare('SELECT * FROM teams WHERE name = ?').get(name) as never);
  }

  async getTeam(id: string): Promise<Team | undefined> {
    return this.teamById(id);
  }

  async getTeamByName(name: string): Promise<Team | undefined> {
    return this.teamByName(name);
  }

  async listTeams(): Promise<Team[]> {
    return (this.db.prepare('SELECT * FROM teams ORDER BY name').all() as never[]).map((r) => this.team(r)!);
  }

  async setTeamLimits(id: string, limits: TeamLimits): Promise<void> {
    this.db.prepare('UPDATE teams SET limits = ? WHERE id = ?').run(JSON.stringify(limits), id);
  }

  /** A new key for the team: returned once, stored only as its sha256. */
  async createKey(teamId: string): Promise<{ id: string; key: string }> {
    const { id, key } = newApiKey();
    this.db.prepare('INSERT INTO api_keys (id, team_id, hash, created, revoked) VALUES (?, ?, ?, ?, NULL)').run(id, teamId, hashKey(key), Date.now());
    return { id, key };
  }

  async listKeys(teamId?: string): Promise<ApiKeyRecord[]> {
    const rows = (teamId
      ? this.db.prepare('SELECT k.*, t.name AS team FROM api_keys k JOIN teams t ON t.id = k.team_id WHERE team_id = ? ORDER BY k.created, k.id').all(teamId)
      : this.db.prepare('SELECT k.*, t.name AS team FROM api_keys k JOIN teams t ON t.id = k.team_id ORDER BY k.created, k.id').all()) as Array<{ id: string; team_id: string; team: string; created: number; revoked: number | null }>;
    return rows.map((r) => ({ id: r.id, teamId: r.team_id, team: r.team, created: r.created, revoked: r.revoked }));
  }

  async revokeKey(id: string): Promise<boolean> {
    return this.db.prepare('UPDATE api_keys SET revoked = ? WHERE id = ? AND revoked IS NULL').run(Date.now(), id).changes > 0;
  }

  /** The team of a valid (known, not revoked) key, else undefined. */
  async authenticate(key: string): Promise<Team | undefined> {
    const row = this.db.prepare('SELECT team_id FROM api_keys WHERE hash = ? AND revoked IS NULL').get(hashKey(key)) as { team_id: string } | undefined;
    return row ? this.teamById(row.team_id) : undefined;
  }

  async putTemplate(rec: Omit<TemplateRecord, 'created' | 'updated'>): Promise<void> {
    const now = Date.now();
    this.db.prepare(`INSERT INTO templates (team_id, name, tag, digest, build_id, created, updated) VALUES (?, ?, ?, ?, ?, ?, ?)
      ON CONFLICT (team_id, name, tag) DO UPDATE SET digest = excluded.digest, build_id = excluded.build_id, updated = excluded.updated`)
      .run(rec.teamId, rec.name, rec.tag, rec.digest, rec.buildId, now, now);
  }

  async listTemplates(teamId: string, name?: string): Promise<TemplateRecord[]> {
    const rows = (name
      ? this.db.prepare('SELECT * FROM templates WHERE team_id = ? AND name = ? ORDER BY name, tag').all(teamId, name)
      : this.db.prepare('SELECT * FROM templates WHERE team_id = ? ORDER BY name, tag').all(teamId)) as Array<{ team_id: string; name: string; tag: string; digest: string; build_id: string; created: number; updated: number }>;
    return rows.map((r) => ({ teamId: r.team_id, name: r.name, tag: r.tag, digest: r.digest, buildId: r.build_id, created: r.created, updated: r.updated }));
  }

  async deleteTemplate(teamId: string, name: string, tag?: string): Promise<number> {
    return tag
      ? this.db.prepare('DELETE FROM templates WHERE team_id = ? AND name = ? AND tag = ?').run(teamId, name, tag).changes
      : this.db.prepare('DELETE FROM templates WHERE team_id = ? AND name = ?').run(teamId, name).changes;
  }

  async createBuild(b: { id: string; teamId: string; request: unknown; template: string | null; createdByKey?: string }): Promise<void> {
    this.db.prepare('INSERT INTO builds (id, team_id, status, request, template, created, created_by_key) VALUES (?, ?, ?, ?, ?, ?, ?)')
      .run(b.id, b.teamId, 'queued', JSON.stringify(b.request), b.template, Date.now(), b.createdByKey ?? null);
  }

  async setBuildRunning(id: string): Promise<void> {
    this.db.prepare("UPDATE builds SET status = 'running', started = ? WHERE id = ?").run(Date.now(), id);
  }

  async finishBuild(id: string, status: ServiceBuildStatus, result: unknown, error: string | null): Promise<void> {
    this.db.prepare(`UPDATE builds SET status = ?, result = ?, error = ?, finished = ?, request = json_remove(request, '$.${SEALED_CREDENTIALS_PATH.join('.')}') WHERE id = ?`)
      .run(status, result === null || result === undefined ? null : JSON.stringify(result), error, Date.now(), id);
  }

  private build(r: { id: string; team_id: string; status: string; request: string; result: string | null; error: string | null; template: string | null; created: number; started: number | null; finished: number | null; created_by_key: string | null } | undefined): ServiceBuild | undefined {
    if (!r) return undefined;
    return {
      id: r.id, teamId: r.team_id, status: r.status as ServiceBuildStatus, request: JSON.parse(r.request) as unknown,
      result: r.result ? (JSON.parse(r.result) as unknown) : null, error: r.error, template: r.template, startedBy: r.created_by_key,
      created: r.created, started: r.started, finished: r.finished,
    };
  }

  /** A build of this team (another team's id is not found). */
  async getBuild(teamId: string, id: string): Promise<ServiceBuild | undefined> {
    return this.build(this.db.prepare('SELECT * FROM builds WHERE id = ? AND team_id = ?').get(id, teamId) as never);
  }

  async listBuilds(status: ServiceBuildStatus[]): Promise<ServiceBuild[]> {
    if (status.length === 0) return [];
    const rows = this.db.prepare(`SELECT * FROM builds WHERE status IN (${status.map(() => '?').join(',')}) ORDER BY created, id`).all(...status) as never[];
    return rows.map((r) => this.build(r)!);
  }

  async lastBuildOf(teamId: string, template: string): Promise<ServiceBuild | undefined> {
    return this.build(this.db.prepare('SELECT * FROM builds WHERE team_id = ? AND template = ? ORDER BY created DESC, id DESC LIMIT 1').get(teamId, template) as never);
  }

  async appendEvent(buildId: string, seq: number, data: string): Promise<void> {
    JSON.parse(data); // the same refusal as PostgreSQL's json column
    this.db.prepare('INSERT INTO build_events (build_id, seq, data) VALUES (?, ?, ?)').run(buildId, seq, data);
  }

  /** Events of a build after `afterSeq` (SSE resumption). */
  async eventsAfter(buildId: string, afterSeq: number): Promise<Array<{ seq: number; data: string }>> {
    return this.db.prepare('SELECT seq, data FROM build_events WHERE build_id = ? AND seq > ? ORDER BY seq').all(buildId, afterSeq) as Array<{ seq: number; data: string }>;
  }

  async lastEventSeq(buildId: string): Promise<number> {
    const r = this.db.prepare('SELECT MAX(seq) AS m FROM build_events WHERE build_id = ?').get(buildId) as { m: number | null };
    return r.m ?? 0;
  }

  async addUsage(u: UsageRecord): Promise<void> {
    if (!(u.quantity >= 0)) throw new BuildError('ERR_KILN_ARGUMENT', `usage ${u.kind}: the quantity must be 0 or more, not ${u.quantity}`);
    this.db.prepare('INSERT INTO usage (team_id, build_id, kind, quantity, at) VALUES (?, ?, ?, ?, ?)').run(u.teamId, u.buildId ?? null, u.kind, u.quantity, Date.now());
  }

  async usageOf(teamId: string, kind: string, sinceMs = 0): Promise<number> {
    const r = this.db.prepare('SELECT COALESCE(SUM(quantity), 0) AS s FROM usage WHERE team_id = ? AND kind = ? AND at >= ?').get(teamId, kind, sinceMs) as { s: number };
    return r.s;
  }

  async usageTimeline(teamId: string, kind: string): Promise<Array<{ buildId: string | null; quantity: number; at: number }>> {
    const rows = this.db.prepare(`SELECT build_id, SUM(quantity) AS q, MAX(at) AS at FROM usage WHERE team_id = ? AND kind = ?
      GROUP BY build_id ORDER BY MAX(at), build_id`).all(teamId, kind) as Array<{ build_id: string | null; q: number; at: number }>;
    return rows.map((r) => ({ buildId: r.build_id, quantity: r.q, at: r.at }));
  }

  async usageByKind(teamId: string, sinceMs = 0): Promise<Record<string, number>> {
    const rows = this.db.prepare('SELECT kind, SUM(quantity) AS s FROM usage WHERE team_id = ? AND at >= ? GROUP BY kind ORDER BY kind').all(teamId, sinceMs) as Array<{ kind: string; s: number }>;
    return Object.fromEntries(rows.map((r) => [r.kind, r.s]));
  }
}
