import { z } from '@hono/zod-openapi';

const digest = z.string().regex(/^sha256:[a-f0-9]{64}$/, 'a sha256 digest: sha256:<64 hex>').openapi({ example: `sha256:${'0'.repeat(64)}` });

export const ErrorBody = z.object({
  error: z.object({
    code: z.string().openapi({ example: 'ERR_KILN_SERVICE_REQUEST' }),
    message: z.string(),
    field: z.string().optional(),
    hint: z.string().optional(),
    missing: z.array(z.string()).optional(),
  }),
}).openapi('Error');

export const ManifestEntrySchema = z.object({
  path: z.string().min(1).max(4096),
  type: z.enum(['file', 'dir', 'symlink']),
  mode: z.number().int().min(0).max(0o7777),
  size: z.number().int().min(0).optional(),
  digest: digest.optional(),
  target: z.string().max(4096).optional(),
  linkOf: z.string().optional(),
}).openapi('ManifestEntry');

export const MissingRequest = z.object({
  blobs: z.array(z.object({ digest, size: z.number().int().min(0) })).max(1_000_000),
}).openapi('MissingRequest');

export const MissingResponse = z.object({ missing: z.array(z.string()) }).openapi('MissingResponse');

export const UploadResponse = z.object({ digest: z.string(), size: z.number(), stored: z.boolean() }).openapi('UploadResponse');

const TemplateSchema = z.object({
  base: z.object({ type: z.enum(['image', 'dockerfile']) }).passthrough(),
  steps: z.array(z.object({ type: z.string() }).passthrough()).max(10_000),
}).openapi('TemplateData');

export const BuildRequestSchema = z.object({
  name: z.string().min(1).max(255).optional().openapi({ description: 'template name, NAME or NAME:TAG (tag latest by default)', example: 'my-template' }),
  template: TemplateSchema.optional(),
  dockerfile: z.string().max(16 * 1024 * 1024).optional().openapi({ description: 'Dockerfile text (instead of a template)' }),
  context: z.array(ManifestEntrySchema).max(1_000_000).openapi({ description: 'every file the build reads; upload the missing digests first' }),
  buildArgs: z.record(z.string(), z.string()).optional(),
  target: z.string().optional(),
  noCache: z.boolean().optional(),
  noCacheFilter: z.array(z.string()).optional(),
  network: z.enum(['default', 'none']).optional(),
  ignorePatterns: z.array(z.string()).optional(),
}).openapi('BuildRequest');

const StepSchema = z.object({ name: z.string(), cached: z.boolean(), durationMs: z.number(), missReason: z.string().optional() }).openapi('BuildStep');

export const BuildSchema = z.object({
  id: z.string(),
  status: z.enum(['queued', 'running', 'success', 'failed', 'cancelled', 'interrupted']),
  template: z.string().nullable(),
  startedBy: z.string().nullable().openapi({ description: 'the id of the API key that started the build (kiln admin key ls)', example: 'k1a2b3c4d' }),
  created: z.number(),
  started: z.number().nullable(),
  finished: z.number().nullable(),
  error: z.string().nullable(),
  result: z.object({
    name: z.string(), tag: z.string().nullable(), digest: z.string(), configDigest: z.string(), durationMs: z.number(), steps: z.array(StepSchema),
  }).nullable(),
}).openapi('Build');

export const TemplateTagSchema = z.object({ tag: z.string(), digest: z.string(), buildId: z.string(), created: z.number(), updated: z.number() }).openapi('TemplateTag');

export const TemplateSummarySchema = z.object({ name: z.string(), tags: z.array(TemplateTagSchema) }).openapi('TemplateSummary');

export const TemplateDetailSchema = z.object({
  name: z.string(),
  tags: z.array(TemplateTagSchema),
  digest: z.string(),
  size: z.number(),
  created: z.number(),
  startCmd: z.array(z.string()).nullable(),
  readyCheck: z.unknown().nullable(),
  steps: z.array(StepSchema),
  lastBuild: z.object({ id: z.string(), status: z.string(), finished: z.number().nullable() }).nullable(),
}).openapi('TemplateDetail');

export const UsageQuery = z.object({
  since: z.string().optional().openapi({
    param: { name: 'since', in: 'query' },
    description: 'count from this time on: milliseconds since the epoch, or an ISO 8601 date/time (default: all time)',
    example: '2026-12-01T00:00:00Z',
  }),
});

export const UsageSchema = z.object({
  since: z.number().openapi({ description: 'the start of the period, in milliseconds since the epoch (0: all time)' }),
  buildSeconds: z.number().openapi({ description: 'seconds the nodes spent building for the team (every attempt)' }),
  cacheBytesPushed: z.number().openapi({ description: 'bytes of blobs and manifests pushed to the shared registry cache' }),
  cacheBytesPulled: z.number().openapi({ description: 'bytes of blobs and manifests pulled from the shared registry cache' }),
  uploadBytes: z.number().openapi({ description: 'bytes of context blobs uploaded (blobs already held are not counted)' }),
}).openapi('Usage');

export const IdParam = z.object({ id: z.string().min(1).max(100).openapi({ param: { name: 'id', in: 'path' } }) });
export const NameParam = z.object({ name: z.string().min(1).max(255).openapi({ param: { name: 'name', in: 'path' } }) });
export const DigestParam = z.object({ digest: digest.openapi({ param: { name: 'digest', in: 'path' } }) });
