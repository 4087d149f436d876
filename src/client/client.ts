import { createReadStream } from 'node:fs';
import http from 'node:http';
import { BuildError } from '../errors/index.js';
import { parseEndpoint, request, type Endpoint } from './http.js';
import { readAll, responseError } from './response.js';
import type { ContextManifest } from './manifest.js';
import type { RemoteBuild, RemoteBuildSpec, RemoteEvent, RemoteTemplate, RemoteTemplateDetail } from './types.js';

/** Where and as whom: `--host` / `KILN_HOST` and `KILN_API_KEY`. */
export interface ClientOptions {
  baseUrl: string;
  apiKey?: string;
}

/** What an upload did: files and bytes sent (0 and 0 for an unchanged context). */
export interface UploadReport {
  files: number;
  bytes: number;
  /** bytes of the context the server already held */
  skippedBytes: number;
}

/** The HTTP client of `kiln serve` used by the CLI (`--host`) and the SDK (`Template.build` with apiKey/baseUrl). */
export class KilnClient {
  private readonly ep: Endpoint;
  private readonly agent = new http.Agent({ keepAlive: true, maxSockets: 8 });

  constructor(private readonly opts: ClientOptions) {
    this.ep = parseEndpoint(opts.baseUrl);
  }

  close(): void {
    this.agent.destroy();
  }

  private headers(extra: Record<string, string> = {}): Record<string, string> {
    return { ...(this.opts.apiKey ? { authorization: `Bearer ${this.opts.apiKey}` } : {}), ...extra };
  }

  private async json<T>(method: string, path: string, body?: unknown, signal?: AbortSignal): Promise<T> {
    const res = await request(this.ep, {
      method, path, agent: this.agent, ...(signal ? { signal } : {}),
      headers: this.headers(body !== undefined ? { 'content-type': 'application/json' } : {}),
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    });
    if (res.status < 200 || res.status >= 300) throw await responseError(res);
    return JSON.parse((await readAll(res)).toString('utf8')) as T;
  }

  health(): Promise<{ status: string; version: string }> {
    return this.json('GET', '/health');
  }

  /** Upload the blobs of the manifest the server lacks; a retry after a dropped connection sends only what is still missing. */
  async upload(m: ContextManifest, signal?: AbortSignal): Promise<UploadReport> {
    const blobs = [...m.files.entries()].map(([digest, f]) => ({ digest, size: f.size }));
    const { missing } = await this.json<{ missing: string[] }>('POST', '/v1/uploads/missing', { blobs }, signal);
    let bytes = 0;
    const queue = [...missing];
    const worker = async (): Promise<void> => {
      for (let d = queue.shift(); d; d = queue.shift()) {
        const f = m.files.get(d)!;
        const res = await request(this.ep, {
          method: 'PUT', path: `/v1/uploads/${d}`, agent: this.agent, ...(signal ? { signal } : {}),
          headers: this.headers({ 'content-type': 'application/octet-stream', 'content-length': String(f.size) }),
          body: createReadStream(f.path),
        });
        if (res.status !== 201 && res.status !== 200) throw await responseError(res);
        await readAll(res);
        bytes += f.size;
      }
    };
    await Promise.all(Array.from({ length: Math.min(4, queue.length) }, worker));
    return { files: missing.length, bytes, skippedBytes: m.bytes - bytes };
  }

  createBuild(spec: RemoteBuildSpec & { context: ContextManifest['entries'] }, signal?: AbortSignal): Promise<RemoteBuild> {
    return this.json('POST', '/v1/builds', spec, signal);
  }

  getBuild(id: string): Promise<RemoteBuild> {
    return this.json('GET', `/v1/builds/${encodeURIComponent(id)}`);
  }

  cancelBuild(id: string): Promise<RemoteBuild> {
    return this.json('DELETE', `/v1/builds/${encodeURIComponent(id)}`);
  }

  listTemplates(): Promise<RemoteTemplate[]> {
    return this.json<{ templates: RemoteTemplate[] }>('GET', '/v1/templates').then((r) => r.templates);
  }

  getTemplate(name: string): Promise<RemoteTemplateDetail> {
    return this.json('GET', `/v1/templates/${encodeURIComponent(name)}`);
  }

  deleteTemplate(name: string): Promise<{ deleted: number }> {
    return this.json('DELETE', `/v1/templates/${encodeURIComponent(name)}`);
  }

  /**
   * Follow a build's events to its `finish` line. A dropped connection is resumed with Last-Event-ID (nothing lost
   * or repeated); `signal` stops following without cancelling the build.
   */
  async follow(id: string, onEvent: (e: RemoteEvent, seq: number) => void, signal?: AbortSignal): Promise<RemoteEvent> {
    let last = 0;
    let failures = 0;
    for (;;) {
      signal?.throwIfAborted();
      let finish: RemoteEvent | undefined;
      try {
        const res = await request(this.ep, {
          method: 'GET', path: `/v1/builds/${encodeURIComponent(id)}/events`, ...(signal ? { signal } : {}),
          headers: this.headers({ accept: 'text/event-stream', ...(last ? { 'last-event-id': String(last) } : {}) }),
        });
        if (res.status !== 200) throw await responseError(res);
        let buf = '';
        let data = '';
        let eventId = 0;
        for await (const chunk of res.body as AsyncIterable<Buffer>) {
          buf += chunk.toString('utf8');
          let nl: number;
          while ((nl = buf.indexOf('\n')) >= 0) {
            const line = buf.slice(0, nl).replace(/\r$/, '');
            buf = buf.slice(nl + 1);
            if (line === '') {
              if (data && eventId > last) {
                last = eventId;
                const e = JSON.parse(data) as RemoteEvent;
                onEvent(e, eventId);
                if (e.type === 'finish') finish = e;
              }
              data = '';
              eventId = 0;
            } else if (line.startsWith('data:')) data += line.slice(5).trimStart();
            else if (line.startsWith('id:')) eventId = Number(line.slice(3).trim());
          }
        }
        failures = 0;
      } catch (err) {
        if (signal?.aborted || (err instanceof BuildError && err.code !== 'ERR_KILN_SERVICE_UNAVAILABLE')) throw err;
        if (++failures > 30) throw err;
      }
      if (finish) return finish;
      await new Promise((r) => setTimeout(r, Math.min(2000, 100 * 2 ** Math.min(failures, 4))));
    }
  }
}
