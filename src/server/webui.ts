import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { OpenAPIHono } from '@hono/zod-openapi';
import type { Context } from 'hono';
import { collectInventory } from '../gc/index.js';
import type { ServiceBuild, ServiceBuildStatus } from '../service/index.js';
import { errorBody, keyIdOf, requestKey, type AppDeps, type AppEnv } from './app.js';
import type { TeamSpace } from './teams.js';
import { USAGE_KINDS } from './usage.js';

/**
 * The web view at /ui: a static page (the bundle of src/webui, made by `npm run build` into dist/webui) and a few
 * read-only JSON views under /ui/api that the page needs beyond /v1 (the team's builds, cache figures). The page
 * itself holds no data; every /ui/api call needs the same API key as /v1.
 */

const ALL_STATUSES: ServiceBuildStatus[] = ['queued', 'running', 'success', 'failed', 'cancelled', 'interrupted'];

interface Step { name: string; cached: boolean; durationMs: number; missReason?: string }

function stepsOf(b: ServiceBuild): Step[] {
  return (b.result as { steps?: Step[] } | null)?.steps ?? [];
}

function assetDir(): string | undefined {
  const here = path.dirname(fileURLToPath(import.meta.url));
  // dist/kiln.mjs (bundled), dist/server/webui.js (tsc output), src/server/webui.ts (tsx)
  return [path.join(here, 'webui'), path.join(here, '..', 'webui'), path.join(here, '..', '..', 'dist', 'webui')].find((d) => existsSync(path.join(d, 'app.js')));
}

const PAGE = (): string => `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>kiln</title>
<link rel="stylesheet" href="/ui/app.css">
</head>
<body>
<div id="root"><noscript>The kiln web view needs JavaScript.</noscript></div>
<script type="module" src="/ui/app.js"></script>
</body>
</html>
`;

/** Bytes added to the cache, each at its time (oldest first), and the cache's size now. */
interface CacheItems { sizeBytes: number; items: Array<{ at: number; bytes: number }> }

/** One machine: what the team's root holds now (blobs and snapshots), by when each was added; what GC removed is gone. */
async function localCacheItems(space: TeamSpace): Promise<CacheItems> {
  const inv = await collectInventory(space.state);
  const items = [...[...inv.blobs.values()].map((b) => ({ at: b.mtimeMs, bytes: b.bytes })), ...[...inv.snapshots.values()].map((x) => ({ at: x.created, bytes: x.bytes }))];
  return { sizeBytes: inv.totalBytes, items: items.sort((a, b) => a.at - b.at) };
}

/**
 * A shared deployment: the bytes the workers pushed to the team's registry cache, as they metered them per build
 * (the store's usage), so every API node shows the same figures whatever its own root holds. Registry GC is not
 * seen: it is what was pushed, an upper bound of what the registry keeps.
 */
async function sharedCacheItems(deps: AppDeps, teamId: string): Promise<CacheItems> {
  const pushed = await deps.store.usageTimeline(teamId, USAGE_KINDS.cacheBytesPushed);
  return { sizeBytes: pushed.reduce((n, p) => n + p.quantity, 0), items: pushed.map((p) => ({ at: p.at, bytes: p.quantity })) };
}

/** Mount the web view. Called before the API's key check: /ui/api checks the key itself. */
export function mountWebUi(app: OpenAPIHono<AppEnv>, deps: AppDeps): void {
  const dir = assetDir();
  const assets = new Map<string, { body: string; type: string }>();
  if (dir) {
    assets.set('app.js', { body: readFileSync(path.join(dir, 'app.js'), 'utf8'), type: 'text/javascript; charset=utf-8' });
    if (existsSync(path.join(dir, 'app.css'))) assets.set('app.css', { body: readFileSync(path.join(dir, 'app.css'), 'utf8'), type: 'text/css; charset=utf-8' });
  }
  const notBuilt = (c: Context<AppEnv>): Response => c.json(errorBody('ERR_KILN_SERVICE_NOT_FOUND', 'the web view is not built (run `npm run build`)'), 404);

  const page = (c: Context<AppEnv>): Response => (dir ? c.html(PAGE()) : notBuilt(c));
  app.get('/ui', page);
  app.get('/ui/', page);
  app.get('/ui/app.js', (c) => { const a = assets.get('app.js'); return a ? c.body(a.body, 200, { 'content-type': a.type, 'cache-control': 'no-cache' }) : notBuilt(c); });
  app.get('/ui/app.css', (c) => { const a = assets.get('app.css'); return a ? c.body(a.body, 200, { 'content-type': a.type, 'cache-control': 'no-cache' }) : notBuilt(c); });

  app.use('/ui/api/*', async (c, next) => {
    const key = requestKey(c.req.header('authorization'));
    const team = key ? await deps.store.authenticate(key) : undefined;
    if (!team) return c.json(errorBody('ERR_KILN_SERVICE_AUTH', key ? 'the API key is not valid (unknown or revoked)' : 'missing API key: send Authorization: Bearer KEY'), 401);
    c.set('team', team);
    return next();
  });

  app.get('/ui/api/whoami', (c) => c.json({ team: c.get('team').name, keyId: keyIdOf(requestKey(c.req.header('authorization'))) ?? null }));

  app.get('/ui/api/builds', async (c) => {
    const team = c.get('team');
    const builds = (await deps.store.listBuilds(ALL_STATUSES)).filter((b) => b.teamId === team.id).reverse().slice(0, 200);
    return c.json({
      builds: builds.map((b) => {
        const steps = stepsOf(b);
        return {
          id: b.id, status: b.status, template: b.template, created: b.created, started: b.started, finished: b.finished, error: b.error,
          durationMs: b.started && b.finished ? b.finished - b.started : b.started ? Date.now() - b.started : null,
          cachedSteps: steps.filter((s) => s.cached).length, totalSteps: steps.length,
          startedBy: b.startedBy,
        };
      }),
    });
  });

  // what each cached step of a build saved: what the same step of the same template took when it last ran before
  app.get('/ui/api/builds/:id/saved', async (c) => {
    const team = c.get('team');
    const b = await deps.store.getBuild(team.id, c.req.param('id'));
    if (!b) return c.json(errorBody('ERR_KILN_SERVICE_NOT_FOUND', 'no such build'), 404);
    const lastRun = new Map<string, number>();
    for (const prev of await deps.store.listBuilds(['success'])) {
      if (prev.id === b.id || prev.teamId !== team.id || prev.template !== b.template || prev.created > b.created) continue;
      for (const s of stepsOf(prev)) if (!s.cached) lastRun.set(s.name, s.durationMs);
    }
    return c.json({ steps: stepsOf(b).map((s) => ({ name: s.name, savedMs: s.cached ? lastRun.get(s.name) ?? null : null })) });
  });

  app.get('/ui/api/cache', async (c) => {
    const team = c.get('team');
    const builds = (await deps.store.listBuilds(['success'])).filter((b) => b.teamId === team.id);
    // a cached step saves what the same step of the same template took when it last ran
    const lastRun = new Map<string, number>();
    const perTemplate = new Map<string, { name: string; builds: number; steps: number; hits: number; savedMs: number }>();
    const series: Array<{ id: string; template: string | null; created: number; ranMs: number; savedMs: number; cachedSteps: number; totalSteps: number }> = [];
    for (const b of builds) {
      const name = b.template ?? '(unnamed)';
      const t = perTemplate.get(name) ?? { name, builds: 0, steps: 0, hits: 0, savedMs: 0 };
      let ranMs = 0;
      let savedMs = 0;
      const steps = stepsOf(b);
      for (const s of steps) {
        const k = `${name}\u0000${s.name}`;
        if (s.cached) savedMs += lastRun.get(k) ?? 0;
        else {
          lastRun.set(k, s.durationMs);
          ranMs += s.durationMs;
        }
      }
      t.builds++;
      t.steps += steps.length;
      t.hits += steps.filter((s) => s.cached).length;
      t.savedMs += savedMs;
      perTemplate.set(name, t);
      series.push({ id: b.id, template: b.template, created: b.created, ranMs, savedMs, cachedSteps: steps.filter((s) => s.cached).length, totalSteps: steps.length });
    }
    const { sizeBytes, items } = deps.cacheSource === 'registry' ? await sharedCacheItems(deps, team.id) : await localCacheItems(await deps.spaces.get(team));
    const recent = series.slice(-50);
    const byId = new Map(builds.map((b) => [b.id, b]));
    let i = 0;
    let held = 0;
    const growth = recent.map((s) => {
      const at = byId.get(s.id)?.finished ?? s.created;
      while (i < items.length && items[i]!.at <= at) held += items[i++]!.bytes;
      return { id: s.id, at, bytes: held };
    });
    return c.json({
      source: deps.cacheSource ?? 'local',
      sizeBytes,
      growth,
      templates: [...perTemplate.values()].map((t) => ({ ...t, hitRate: t.steps ? t.hits / t.steps : 0 })),
      series: recent,
    });
  });
}
