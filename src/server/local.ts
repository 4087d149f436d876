import { Hono } from 'hono';
import type { HttpBindings } from '@hono/node-server';
import { stream } from 'hono/streaming';
import { z } from 'zod';
import { formatUserError, isBuildError } from '../errors/index.js';
import { metadataFileData, runBuild, type BuildResult, type State } from '../engine/index.js';
import type { ProgressEvent } from '../progress/index.js';
import type { ContextWatch, ResolvedSources } from '../context/index.js';
import { programStepFromText } from '../frontend/dockerfile/convert/index.js';
import type { BuildQueue } from '../service/index.js';
import type { ServerConfig } from './config.js';
import { serverBuildOptions } from './options.js';

/** What plain `kiln build` hands to a local `kiln serve` (paths on this machine, built in the server's own root). */
export const LocalBuildSchema = z.object({
  contextDir: z.string().min(1),
  dockerfile: z.string().optional(),
  dockerfileText: z.string().optional(),
  // a template's steps as Dockerfile text (programStepText), parsed back into the records they were made from
  steps: z.array(z.object({
    instructions: z.string(),
    location: z.object({ file: z.string(), line: z.number().int() }).optional(),
    noCache: z.boolean().optional(),
  })).optional(),
  tags: z.array(z.string()),
  buildArgs: z.record(z.string(), z.string()),
  target: z.string().optional(),
  noCache: z.boolean().optional(),
  noCacheFilter: z.array(z.string()).optional(),
  network: z.enum(['none', 'isolated']).optional(),
  secrets: z.array(z.object({ id: z.string(), file: z.string() })).optional(),
  ignorePatterns: z.array(z.string()).optional(),
});
export type LocalBuild = z.infer<typeof LocalBuildSchema>;

/**
 * The local socket's app (`ROOT/kiln.sock`, mode 0600: root only, so no key): `POST /local/v1/builds` runs the
 * build in the server's warm state and streams its `--progress=json` lines back, then one `result` or `error`
 * line. The client going away cancels it (it is the user's Ctrl-C).
 */
export function createLocalApp(deps: {
  config: ServerConfig;
  state: State;
  queue: BuildQueue;
  log: (l: Record<string, unknown>) => void;
  /** the server's watched context trees: a context built before is not walked again while unchanged */
  contextWatch?: ContextWatch<ResolvedSources>;
}): Hono<{ Bindings: HttpBindings }> {
  const app = new Hono<{ Bindings: HttpBindings }>();
  app.get('/health', (c) => c.json({ status: 'ok', root: deps.config.root }));
  app.post('/local/v1/builds', async (c) => {
    let body: unknown;
    try {
      body = await c.req.json();
    } catch {
      return c.json({ error: { code: 'ERR_KILN_SERVICE_REQUEST', message: 'body: not JSON' } }, 400);
    }
    const parsed = LocalBuildSchema.safeParse(body);
    if (!parsed.success) {
      const i = parsed.error.issues[0];
      return c.json({ error: { code: 'ERR_KILN_SERVICE_REQUEST', message: `body.${i?.path.join('.')}: ${i?.message}` } }, 400);
    }
    const req = parsed.data;
    return stream(c, async (s) => {
      const ac = new AbortController();
      s.onAbort(() => ac.abort(new Error('the client went away')));
      const write = (o: unknown): void => void s.write(`${JSON.stringify(o)}\n`);
      const started = Date.now();
      const done = new Promise<void>((resolve) => {
        deps.queue.submit({
          id: `local-${started}-${Math.random()}`, teamId: 'local', teamLimit: deps.config.maxBuilds,
          run: async () => {
            let result: BuildResult | undefined;
            try {
              result = await runBuild(serverBuildOptions(deps.config, {
                team: { id: 'local', name: 'local', created: 0, limits: {} }, state: deps.state, local: true, ...(deps.contextWatch ? { contextWatch: deps.contextWatch } : {}),
                contextDir: req.contextDir, ...(req.dockerfileText !== undefined ? { dockerfileText: req.dockerfileText } : {}), ...(req.dockerfile ? { dockerfileName: req.dockerfile } : {}),
                tags: req.tags, buildArgs: req.buildArgs, ...(req.target ? { target: req.target } : {}), noCache: req.noCache === true,
                noCacheFilter: req.noCacheFilter ?? [], ...(req.steps ? { steps: req.steps.map((st) => programStepFromText(st)) } : {}), secrets: req.secrets ?? [], ignorePatterns: req.ignorePatterns ?? [],
                ...(req.network ? { network: req.network } : {}),
                progress: { setTotal: (n) => write({ type: 'total', steps: n }), event: (e: ProgressEvent) => write(e), finish: () => undefined },
                signal: ac.signal,
              }));
              write({ type: 'result', result, metadataFile: metadataFileData(result) });
            } catch (err) {
              write({ type: 'error', message: isBuildError(err) ? err.message : formatUserError(err), code: isBuildError(err) ? err.code : 'ERR_KILN_INTERNAL' });
            } finally {
              const cached = result?.steps.filter((x) => x.cached).length ?? 0;
              deps.log({ msg: 'build', team: 'local', buildId: result?.buildId ?? null, status: result ? 'success' : 'failed', durationMs: Date.now() - started, cachedSteps: cached, totalSteps: result?.steps.length ?? 0 });
              resolve();
            }
          },
        });
      });
      await done;
    });
  });
  return app;
}
