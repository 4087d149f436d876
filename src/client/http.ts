import http from 'node:http';
import { Readable } from 'node:stream';
import { BuildError } from '../errors/index.js';

/** Where a service is: `http://HOST:PORT[/prefix]` or `unix:/path/to.sock`. */
export interface Endpoint {
  socketPath?: string;
  host?: string;
  port?: number;
  prefix: string;
}

export function parseEndpoint(url: string): Endpoint {
  if (url.startsWith('unix:')) return { socketPath: url.slice(5), prefix: '' };
  let u: URL;
  try {
    u = new URL(/^[a-z]+:\/\//i.test(url) ? url : `http://${url}`);
  } catch {
    throw new BuildError('ERR_KILN_ARGUMENT', `--host "${url}": expected http://HOST:PORT or unix:/path`);
  }
  if (u.protocol !== 'http:') throw new BuildError('ERR_KILN_ARGUMENT', `--host "${url}": only http:// (TLS through a reverse proxy on the server side) or unix: is supported`);
  return { host: u.hostname.replace(/^\[|\]$/g, ''), port: Number(u.port || 80), prefix: u.pathname.replace(/\/$/, '') };
}

export interface HttpResponse {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: http.IncomingMessage;
}

/** One HTTP request (keep-alive agent per endpoint); the body is a stream the caller reads. */
export function request(ep: Endpoint, opts: { method: string; path: string; headers?: Record<string, string>; body?: string | Buffer | Readable; agent?: http.Agent; signal?: AbortSignal }): Promise<HttpResponse> {
  return new Promise((resolve, reject) => {
    const req = http.request({
      // servername '' on a unix socket: Node's agent otherwise derives a TLS server name from the host header, and
      // its first isIP call costs ~15 ms of a lean client's start (measured); plain HTTP never uses the name
      ...(ep.socketPath ? { socketPath: ep.socketPath, servername: '' } : { host: ep.host, port: ep.port }),
      method: opts.method, path: `${ep.prefix}${opts.path}`, headers: opts.headers ?? {}, ...(opts.agent ? { agent: opts.agent } : {}), ...(opts.signal ? { signal: opts.signal } : {}),
    }, (res) => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: res }));
    req.on('error', (err: NodeJS.ErrnoException) => {
      if (err.name === 'AbortError') reject(err);
      else reject(new BuildError('ERR_KILN_SERVICE_UNAVAILABLE', `cannot reach kiln serve at ${ep.socketPath ? `unix:${ep.socketPath}` : `${ep.host}:${ep.port}`}: ${err.code ?? err.message}`, { cause: err }));
    });
    if (opts.body instanceof Readable) opts.body.pipe(req);
    else req.end(opts.body);
  });
}
