import { OpenAPIHono, createRoute, z } from '@hono/zod-openapi';
import type { HttpBindings } from '@hono/node-server';
import type { Context } from 'hono';
import { HTTPException } from 'hono/http-exception';
import { streamSSE } from 'hono/streaming';
import { BuildError, ERROR_CODES, isBuildError } from '../errors/index.js';
import type { ServiceBuild, ServiceStore, Team } from '../service/index.js';
import type { BuildService, BuildSpec } from './builds.js';
import { imageSummary, type BuildOutcome } from './run-build.js';
import type { ServerMetrics } from './metrics.js';
import { BuildRequestSchema, BuildSchema, DigestParam, ErrorBody, IdParam, MissingRequest, MissingResponse, NameParam, TemplateDetailSchema, TemplateSummarySchema, UploadResponse, UsageQuery, UsageSchema } from './schemas.js';
import type { TeamSpaces } from './teams.js';
import { recordUpload, usageSummary } from './usage.js';
import { mountRegistry } from './v2.js';
import { mountWebUi } from './webui.js';

export interface AppEnv {
  Bindings: HttpBindings;
  /** the team of the request's key, and the key's id (the only part of a key that may be shown) */
  Variables: { team: Team; keyId: string | undefined };
}

export interface AppDeps {
  store: ServiceStore;
  spaces: TeamSpaces;
  builds: BuildService;
  metrics: ServerMetrics;
  version: string;
  log: (line: Record<string, unknown>) => void;
  /**
   * where the team's cache lives: `local`, this node's team root (one machine); `registry`, the shared registry cache
   * of a deployment with `--database` and `--cache-registry`, of which this node may hold nothing (the web view's
   * cache figures then come from the store)
   */
  cacheSource?: 'local' | 'registry';
}

const STATUS_OF_KIND = { 'not-found': 404, 'already-exists': 409, 'invalid-argument': 400, 'failed-precondition': 409, unavailable: 503, internal: 500 } as const;

/** The JSON error body every failure gets (never a stack trace). */
export function errorBody(code: string, message: string, extra: { field?: string; missing?: string[] } = {}): z.infer<typeof ErrorBody> {
  const hint = (ERROR_CODES as Record<string, { hint: string } | undefined>)[code]?.hint;
  return { error: { code, message, ...(hint ? { hint } : {}), ...extra } };
}

function buildErrorResponse(c: Context, err: BuildError): Response {
  const status = err.code === 'ERR_KILN_SERVICE_AUTH' ? 401 : STATUS_OF_KIND[err.kind];
  const missing = (err.details as { missing?: unknown } | undefined)?.missing;
  return c.json(errorBody(err.code, err.message, Array.isArray(missing) ? { missing: missing as string[] } : {}), status);
}

const bearer = { security: [{ Bearer: [] }] };
const err = (description: string) => ({ content: { 'application/json': { schema: ErrorBody } }, description });
const json = <T extends z.ZodTypeAny>(schema: T, description: string) => ({ content: { 'application/json': { schema } }, description });

function buildView(b: ServiceBuild): z.infer<typeof BuildSchema> {
  return { id: b.id, status: b.status, template: b.template, startedBy: b.startedBy, created: b.created, started: b.started, finished: b.finished, error: b.error, result: b.result as z.infer<typeof BuildSchema>['result'] };
}

/** The API key of a request: `Authorization: Bearer KEY`, or for registry clients Basic with the key as password. */
export function requestKey(header: string | undefined): string | undefined {
  if (!header) return undefined;
  const m = /^(Bearer|Basic)\s+(.+)$/i.exec(header.trim());
  if (!m) return undefined;
  if (m[1]!.toLowerCase() === 'bearer') return m[2]!;
  const decoded = Buffer.from(m[2]!, 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  return colon >= 0 ? decoded.slice(colon + 1) : undefined;
}

/**
 * The id part of a key `kiln_<id>_<secret>`. The id is made with the secret and the whole key is what the store
 * checked, so for an authenticated key it is that key's id.
 */
export function keyIdOf(key: string | undefined): string | undefined {
  return key ? /^kiln_(k[0-9a-f]+)_/.exec(key)?.[1] : undefined;
}

/** The HTTP API of `kiln serve` (its OpenAPI document is served at /openapi.json and kept in docs/openapi.json). */
export function createApp(deps: AppDeps): OpenAPIHono<AppEnv> {
  const app = new OpenAPIHono<AppEnv>({
    defaultHook: (result, c) => {
      if (result.success) return undefined;
      const issue = result.error.issues[0];
      const field = issue ? issue.path.join('.') : '';
      const where = result.target === 'json' ? 'body' : result.target;
      return c.json(errorBody('ERR_KILN_SERVICE_REQUEST', `${where}${field ? `.${field}` : ''}: ${issue?.message ?? 'invalid'}`, { field: field || where }), 400);
    },
  });
  app.openAPIRegistry.registerComponent('securitySchemes', 'Bearer', { type: 'http', scheme: 'bearer', description: 'an API key from `kiln admin key create --team NAME`' });

  // one JSON line per request
  app.use('*', async (c, next) => {
    const t0 = performance.now();
    await next();
    const team = c.get('team') as Team | undefined;
    deps.metrics.requests.inc({ method: c.req.method, status: String(c.res.status) });
    deps.log({ msg: 'request', method: c.req.method, path: c.req.path, status: c.res.status, durationMs: Math.round((performance.now() - t0) * 10) / 10, ...(team ? { team: team.name } : {}) });
  });

  app.onError((e, c) => {
    if (isBuildError(e)) return buildErrorResponse(c, e);
    if (e instanceof HTTPException) {
      const status = e.status;
      return c.json(errorBody(status === 400 ? 'ERR_KILN_SERVICE_REQUEST' : 'ERR_KILN_INTERNAL', status === 400 ? `body: ${e.message}` : e.message, status === 400 ? { field: 'body' } : {}), status);
    }
    process.stderr.write(`kiln serve: ${c.req.method} ${c.req.path}: ${e instanceof Error ? e.stack : String(e)}\n`);
    return c.json(errorBody('ERR_KILN_INTERNAL', 'internal error (logged by the server)'), 500);
  });
  app.notFound((c) => c.json(errorBody('ERR_KILN_SERVICE_NOT_FOUND', `no such endpoint: ${c.req.method} ${c.req.path}`), 404));

  app.openapi(
    createRoute({ method: 'get', path: '/health', summary: 'Liveness (no key needed)', responses: { 200: json(z.object({ status: z.literal('ok'), version: z.string() }).openapi('Health'), 'the server is up') } }),
    (c) => c.json({ status: 'ok' as const, version: deps.version }, 200),
  );

  mountWebUi(app, deps); // the web view at /ui (its /ui/api checks the key itself)

  // every other endpoint needs a valid key
  app.use('*', async (c, next) => {
    if (c.req.path === '/health') return next();
    const key = requestKey(c.req.header('authorization'));
    const team = key ? await deps.store.authenticate(key) : undefined;
    if (!team) {
      const message = key ? 'the API key is not valid (unknown or revoked)' : 'missing API key: send Authorization: Bearer KEY';
      if (c.req.path.startsWith('/v2')) c.header('WWW-Authenticate', 'Basic realm="kiln"');
      return c.json(errorBody('ERR_KILN_SERVICE_AUTH', message), 401);
    }
    c.set('team', team);
    c.set('keyId', keyIdOf(key));
    return next();
  });

  app.get('/openapi.json', (c) => c.json(openApiDocument(app, deps.version)));
  app.get('/metrics', async (c) => c.body(await deps.metrics.registry.metrics(), 200, { 'content-type': deps.metrics.registry.contentType }));

  app.openapi(
    createRoute({
      method: 'post', path: '/v1/uploads/missing', ...bearer, summary: 'Which of these context blobs the team does not hold yet',
      request: { body: { content: { 'application/json': { schema: MissingRequest } }, required: true } },
      responses: { 200: json(MissingResponse, 'digests to upload'), 400: err('malformed body'), 401: err('no valid key') },
    }),
    async (c) => {
      const space = await deps.spaces.get(c.get('team'));
      const body = c.req.valid('json');
      const missing = await space.uploads.missing(body.blobs.map((b) => b.digest));
      const miss = new Set(missing);
      let saved = 0;
      for (const b of body.blobs) if (!miss.has(b.digest)) saved += b.size;
      deps.metrics.uploadBytesSaved.inc(saved);
      return c.json({ missing }, 200);
    },
  );

  app.openapi(
    createRoute({
      method: 'put', path: '/v1/uploads/{digest}', ...bearer, summary: 'Upload one context blob, streamed and verified against its digest',
      request: { params: DigestParam, body: { content: { 'application/octet-stream': { schema: z.string().openapi({ format: 'binary' }) } }, required: true } },
      responses: { 201: json(UploadResponse, 'stored'), 200: json(UploadResponse, 'already held'), 400: err('digest mismatch: nothing stored'), 401: err('no valid key') },
    }),
    async (c) => {
      const { digest } = c.req.valid('param');
      const space = await deps.spaces.get(c.get('team'));
      if (await space.uploads.has(digest)) {
        c.env.incoming.resume();
        return c.json({ digest, size: 0, stored: false }, 200);
      }
      const size = await space.uploads.put(digest, c.env.incoming, space.limits.uploadBytesPerBuild);
      deps.metrics.uploadBytes.inc(size);
      await recordUpload(deps.store, c.get('team'), size);
      return c.json({ digest, size, stored: true }, 201);
    },
  );

  app.openapi(
    createRoute({
      method: 'post', path: '/v1/builds', ...bearer, summary: 'Start a build of a template or a Dockerfile (its context uploaded first)',
      request: { body: { content: { 'application/json': { schema: BuildRequestSchema } }, required: true } },
      responses: { 202: json(BuildSchema, 'queued'), 400: err('malformed body or context not uploaded'), 401: err('no valid key') },
    }),
    async (c) => {
      const keyId = c.get('keyId');
      const b = await deps.builds.submit(c.get('team'), c.req.valid('json') as BuildSpec, keyId ? { startedBy: keyId } : {});
      return c.json(buildView(b), 202);
    },
  );

  app.openapi(
    createRoute({
      method: 'get', path: '/v1/builds/{id}', ...bearer, summary: 'A build: status, steps with cached flags, timings and miss reasons',
      request: { params: IdParam }, responses: { 200: json(BuildSchema, 'the build'), 401: err('no valid key'), 404: err('no such build for this team') },
    }),
    async (c) => {
      const b = await deps.store.getBuild(c.get('team').id, c.req.valid('param').id);
      if (!b) return c.json(errorBody('ERR_KILN_SERVICE_NOT_FOUND', 'no such build'), 404);
      return c.json(buildView(b), 200);
    },
  );

  app.openapi(
    createRoute({
      method: 'delete', path: '/v1/builds/{id}', ...bearer, summary: 'Cancel a queued or running build (its RUN container is killed)',
      request: { params: IdParam }, responses: { 202: json(BuildSchema, 'cancelling'), 401: err('no valid key'), 404: err('no such build for this team'), 409: err('the build has finished') },
    }),
    async (c) => {
      const team = c.get('team');
      const id = c.req.valid('param').id;
      const b = await deps.store.getBuild(team.id, id);
      if (!b) return c.json(errorBody('ERR_KILN_SERVICE_NOT_FOUND', 'no such build'), 404);
      if (!(await deps.builds.cancel(team, id))) return c.json(errorBody('ERR_KILN_SERVICE_REQUEST', `the build has finished (${(await deps.store.getBuild(team.id, id))?.status ?? b.status})`), 409);
      return c.json(buildView((await deps.store.getBuild(team.id, id))!), 202);
    },
  );

  app.openapi(
    createRoute({
      method: 'get', path: '/v1/builds/{id}/events', ...bearer,
      summary: 'Server-Sent Events: the lines of --progress=json, numbered by id; resume with Last-Event-ID',
      request: { params: IdParam },
      responses: { 200: { content: { 'text/event-stream': { schema: z.string() } }, description: 'event stream, ends after the finish event' }, 401: err('no valid key'), 404: err('no such build for this team') },
    }),
    // the SSE response is a stream, not a JSON body
    (async (c: Context<AppEnv>) => {
      const id = c.req.param('id')!;
      const teamId = c.get('team').id;
      if (!(await deps.store.getBuild(teamId, id))) return c.json(errorBody('ERR_KILN_SERVICE_NOT_FOUND', 'no such build'), 404);
      const after = Number(c.req.header('last-event-id') ?? c.req.query('after') ?? 0);
      return streamSSE(c, async (stream) => {
        const ac = new AbortController();
        stream.onAbort(() => ac.abort());
        const pending: Array<Promise<void>> = [];
        await deps.builds.follow(teamId, id, Number.isFinite(after) ? after : 0, (seq, data) => {
          pending.push(stream.writeSSE({ id: String(seq), data }));
        }, ac.signal);
        await Promise.all(pending);
      });
    }) as never,
  );

  app.openapi(
    createRoute({ method: 'get', path: '/v1/templates', ...bearer, summary: "The team's templates and their tags", responses: { 200: json(z.object({ templates: z.array(TemplateSummarySchema) }), 'templates'), 401: err('no valid key') } }),
    async (c) => {
      const byName = new Map<string, z.infer<typeof TemplateSummarySchema>>();
      for (const t of await deps.store.listTemplates(c.get('team').id)) {
        const e = byName.get(t.name) ?? { name: t.name, tags: [] };
        e.tags.push({ tag: t.tag, digest: t.digest, buildId: t.buildId, created: t.created, updated: t.updated });
        byName.set(t.name, e);
      }
      return c.json({ templates: [...byName.values()] }, 200);
    },
  );

  app.openapi(
    createRoute({
      method: 'get', path: '/v1/templates/{name}', ...bearer, summary: 'A template: digest, size, steps, start command and ready check, created, last build',
      request: { params: NameParam }, responses: { 200: json(TemplateDetailSchema, 'the template'), 401: err('no valid key'), 404: err('no such template for this team') },
    }),
    async (c) => {
      const team = c.get('team');
      const { name, tag } = splitName(c.req.valid('param').name);
      const tags = await deps.store.listTemplates(team.id, name);
      const chosen = tags.find((t) => t.tag === tag) ?? (tag === undefined ? tags.find((t) => t.tag === 'latest') ?? tags[0] : undefined);
      if (!chosen) return c.json(errorBody('ERR_KILN_SERVICE_NOT_FOUND', `no template "${c.req.valid('param').name}"`), 404);
      const built = await deps.store.getBuild(team.id, chosen.buildId);
      const last = await deps.store.lastBuildOf(team.id, name);
      // the build that made it kept the image's summary (a worker built it: this node may not hold the blobs)
      const kept = (built?.result as BuildOutcome | null)?.image;
      const image = kept && (built?.result as BuildOutcome).digest === chosen.digest ? kept : await imageSummary(await deps.spaces.get(team), chosen.digest);
      return c.json({
        name,
        tags: tags.map((t) => ({ tag: t.tag, digest: t.digest, buildId: t.buildId, created: t.created, updated: t.updated })),
        digest: chosen.digest, size: image.size, created: chosen.created,
        startCmd: image.startCmd,
        readyCheck: image.readyCheck,
        steps: ((built?.result as { steps?: Array<{ name: string; cached: boolean; durationMs: number; missReason?: string }> } | null)?.steps) ?? [],
        lastBuild: last ? { id: last.id, status: last.status, finished: last.finished } : null,
      }, 200);
    },
  );

  app.openapi(
    createRoute({
      method: 'delete', path: '/v1/templates/{name}', ...bearer, summary: 'Delete a template (NAME: every tag; NAME:TAG: that tag)',
      request: { params: NameParam }, responses: { 200: json(z.object({ deleted: z.number() }), 'deleted'), 401: err('no valid key'), 404: err('no such template for this team') },
    }),
    async (c) => {
      const team = c.get('team');
      const { name, tag } = splitName(c.req.valid('param').name);
      const gone = (await deps.store.listTemplates(team.id, name)).filter((t) => tag === undefined || t.tag === tag);
      if (gone.length === 0) return c.json(errorBody('ERR_KILN_SERVICE_NOT_FOUND', `no template "${c.req.valid('param').name}"`), 404);
      const space = await deps.spaces.get(team);
      for (const t of gone) {
        await deps.store.deleteTemplate(team.id, name, t.tag);
        space.state.db.images.deleteImage(`${name}:${t.tag}`); // its blobs go with the team's next GC
      }
      return c.json({ deleted: gone.length }, 200);
    },
  );

  app.openapi(
    createRoute({
      method: 'get', path: '/v1/usage', ...bearer, summary: "The team's metered usage: build seconds, shared-cache bytes pushed and pulled, upload bytes",
      request: { query: UsageQuery }, responses: { 200: json(UsageSchema, 'usage since the time asked for'), 400: err('since is not a time'), 401: err('no valid key') },
    }),
    async (c) => {
      const since = parseSince(c.req.valid('query').since);
      return c.json(await usageSummary(deps.store, c.get('team').id, since), 200);
    },
  );

  mountRegistry(app, deps);
  return app;
}

/** `?since=`: milliseconds since the epoch or an ISO 8601 date/time; absent: 0 (all time). */
function parseSince(v: string | undefined): number {
  if (v === undefined || v === '') return 0;
  const ms = /^\d+$/.test(v) ? Number(v) : Date.parse(v);
  if (!Number.isFinite(ms)) throw new BuildError('ERR_KILN_SERVICE_REQUEST', `query.since: "${v}" is neither milliseconds since the epoch nor an ISO 8601 date/time`);
  return ms;
}

function splitName(n: string): { name: string; tag?: string } {
  const colon = n.lastIndexOf(':');
  return colon > 0 && !n.slice(colon).includes('/') ? { name: n.slice(0, colon), tag: n.slice(colon + 1) } : { name: n };
}

/** The OpenAPI document of the API (what /openapi.json serves and docs/openapi.json holds). */
export function openApiDocument(app: OpenAPIHono<AppEnv>, version: string): Record<string, unknown> {
  return app.getOpenAPI31Document({
    openapi: '3.1.0',
    info: { title: 'kiln build service', version, description: 'Templates built as a service: API keys, team-scoped caches, content-addressed uploads. The read-only OCI distribution API is under /v2/.' },
  }) as unknown as Record<string, unknown>;
}

