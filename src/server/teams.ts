import { existsSync, promises as fsp, writeFileSync } from 'node:fs';
import path from 'node:path';
import { imageBlobs, openState, type State } from '../engine/index.js';
import type { Digest } from '../oci/index.js';
import { parseRegistryRef, RegistryClient } from '../registry/index.js';
import { openLocalUploads, openRegistryUploads, teamUploadsRef, type Team, type TeamLimits, type UploadStore } from '../service/index.js';
import type { ServerConfig } from './config.js';

/** A team's own state root, kept open while the server runs. */
export interface TeamSpace {
  team: Team;
  root: string;
  state: State;
  uploads: UploadStore;
  limits: Required<TeamLimits>;
}

/**
 * One state root per team (`ROOT/teams/<id>`): the team's cache records, snapshots, cache mounts, images, build
 * logs and uploads are there and nowhere else, so no lookup of one team can reach another's. Base images come from
 * the server's own root (`kiln --root ROOT import|pull|load`), hardlinked into a team's store on first use.
 */
export class TeamSpaces {
  private readonly open = new Map<string, Promise<TeamSpace>>();

  private client: RegistryClient | undefined;

  constructor(private readonly config: ServerConfig, private readonly base: State) {}

  /**
   * A team's uploads: with a database and a shared registry (`--database` with `--cache-registry REF`), blobs at
   * REF/<team-id>/uploads that every worker reads (an API-only node keeps no local copy); otherwise the team's folder.
   */
  private async uploadsOf(team: Team, root: string): Promise<UploadStore> {
    const dir = path.join(root, 'uploads');
    if (!this.config.database || !this.config.cacheRegistry) return openLocalUploads(dir);
    const base = parseRegistryRef(this.config.cacheRegistry);
    this.client ??= new RegistryClient({ insecureHosts: this.config.insecureRegistries });
    return openRegistryUploads({ client: this.client, ref: teamUploadsRef(base, team.id), cacheDir: dir, cacheUploads: this.config.workers > 0 });
  }

  limitsOf(team: Team): Required<TeamLimits> {
    return { ...this.config.teamDefaults, ...team.limits };
  }

  get(team: Team): Promise<TeamSpace> {
    let p = this.open.get(team.id);
    if (!p) {
      p = this.openTeam(team);
      this.open.set(team.id, p);
      p.catch(() => this.open.delete(team.id));
    }
    return p.then((s) => ({ ...s, team, limits: this.limitsOf(team) }));
  }

  private async openTeam(team: Team): Promise<TeamSpace> {
    const root = path.join(this.config.root, 'teams', team.id);
    await fsp.mkdir(root, { recursive: true, mode: 0o700 });
    const limits = this.limitsOf(team);
    // the team's automatic GC (after each of its builds) keeps its root within its stored-bytes limit
    writeFileSync(path.join(root, 'config.json'), `${JSON.stringify({ gc: { maxUsedSpace: limits.storedBytes } }, null, 2)}\n`);
    const state = await openState({ root });
    const uploads = await this.uploadsOf(team, root);
    return { team, root, state, uploads, limits };
  }

  /** Make the server's base images (by name) known to the team's store, blobs hardlinked. */
  async seedBaseImages(space: TeamSpace): Promise<void> {
    for (const img of this.base.db.images.listImages()) {
      const have = space.state.db.images.getImage(img.name);
      if (have) continue;
      for (const d of await imageBlobs(this.base, img.manifest as Digest)) {
        const dst = space.state.store.path(d);
        if (existsSync(dst)) continue;
        await fsp.mkdir(path.dirname(dst), { recursive: true });
        await fsp.link(this.base.store.path(d), dst).catch(() => fsp.copyFile(this.base.store.path(d), dst));
      }
      space.state.db.images.putImage({ name: img.name, manifest: img.manifest, created: img.created });
    }
  }

  private readonly locks = new Map<string, Promise<void>>();

  /** Builds of the same template share its context folder: one at a time in this process. */
  async withContextLock<T>(dir: string, fn: () => Promise<T>): Promise<T> {
    const prev = this.locks.get(dir) ?? Promise.resolve();
    let release!: () => void;
    const mine = new Promise<void>((r) => (release = r));
    const chained = prev.then(() => mine);
    this.locks.set(dir, chained);
    await prev;
    try {
      return await fn();
    } finally {
      release();
      if (this.locks.get(dir) === chained) this.locks.delete(dir);
    }
  }

  async closeAll(): Promise<void> {
    for (const p of this.open.values()) {
      const s = await p.catch(() => undefined);
      s?.state.close();
    }
    this.open.clear();
  }
}

