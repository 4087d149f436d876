import type { OpenAPIHono } from '@hono/zod-openapi';
import { Readable } from 'node:stream';
import type { Context } from 'hono';
import type { Digest } from '../oci/index.js';
import type { AppDeps, AppEnv } from './app.js';
import { imageBlobs } from '../engine/index.js';

const DIGEST = /^sha256:[a-f0-9]{64}$/;

function distError(c: Context, status: 404 | 400, code: string, message: string): Response {
  return c.json({ errors: [{ code, message }] }, status);
}

/**
 * The read-only OCI distribution API over a team's templates: `/v2/NAME/manifests/TAG|DIGEST`,
 * `/v2/NAME/blobs/DIGEST`, `/v2/NAME/tags/list`. Only blobs the team's template NAME references are served, so a
 * guessed digest of anything else (another team's, an upload) is 404 like an unknown one.
 */
export function mountRegistry(app: OpenAPIHono<AppEnv>, deps: AppDeps): void {
  app.get('/v2/', (c) => c.json({}, 200, { 'Docker-Distribution-API-Version': 'registry/2.0' }));
  app.get('/v2', (c) => c.json({}, 200, { 'Docker-Distribution-API-Version': 'registry/2.0' }));

  const handle = async (c: Context<AppEnv>): Promise<Response> => {
    const rest = c.req.path.slice('/v2/'.length);
    const m = /^(.+)\/(manifests|blobs|tags)\/([^/]+)$/.exec(rest);
    if (!m) return distError(c, 404, 'NAME_UNKNOWN', 'no such path');
    const [, name, kind, ref] = m as unknown as [string, string, string, string];
    const team = c.get('team');
    const tags = await deps.store.listTemplates(team.id, name);
    if (tags.length === 0) return distError(c, 404, 'NAME_UNKNOWN', `repository ${name} not known`);
    const space = await deps.spaces.get(team);
    const head = c.req.method === 'HEAD';
    if (kind === 'tags') {
      if (ref !== 'list') return distError(c, 404, 'NAME_UNKNOWN', 'no such path');
      return c.json({ name, tags: tags.map((t) => t.tag) });
    }
    // what this repository may serve: the closure of its tags' images
    const allowed = new Set<string>();
    for (const t of tags) for (const d of await imageBlobs(space.state, t.digest as Digest)) allowed.add(d);
    if (kind === 'manifests') {
      const digest = DIGEST.test(ref) ? ref : tags.find((t) => t.tag === ref)?.digest;
      if (!digest || !allowed.has(digest)) return distError(c, 404, 'MANIFEST_UNKNOWN', `manifest ${ref} not known`);
      const body = await space.state.store.read(digest as Digest);
      const mediaType = (JSON.parse(body.toString()) as { mediaType?: string }).mediaType ?? 'application/vnd.oci.image.manifest.v1+json';
      const headers = { 'Content-Type': mediaType, 'Docker-Content-Digest': digest, 'Content-Length': String(body.length) };
      return head ? c.body(null, 200, headers) : c.body(new Uint8Array(body), 200, headers);
    }
    if (!DIGEST.test(ref)) return distError(c, 400, 'DIGEST_INVALID', `"${ref}" is not a digest`);
    if (!allowed.has(ref)) return distError(c, 404, 'BLOB_UNKNOWN', `blob ${ref} not known`);
    const info = await space.state.store.info(ref as Digest);
    if (!info) return distError(c, 404, 'BLOB_UNKNOWN', `blob ${ref} not known`);
    const headers = { 'Content-Type': 'application/octet-stream', 'Docker-Content-Digest': ref, 'Content-Length': String(info.size) };
    if (head) return c.body(null, 200, headers);
    return c.body(Readable.toWeb(space.state.store.createReadStream(ref as Digest)) as ReadableStream, 200, headers);
  };
  app.get('/v2/*', handle);
  app.on('HEAD', '/v2/*', handle);
}
