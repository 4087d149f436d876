import { BuildError, ERROR_CODES, type ErrorCode } from '../errors/index.js';

/*
 * Reading a kiln serve answer, whichever transport carried it (node:http for the service, the plain socket client
 * of unix-http.ts for ROOT/kiln.sock): only the status and a body to iterate.
 */

/** What a response reader needs of an answer. */
export interface AnswerBody {
  status: number;
  body: AsyncIterable<Buffer>;
}

export async function readAll(res: AnswerBody): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of res.body) chunks.push(c);
  return Buffer.concat(chunks);
}

/** A non-2xx answer as the service's coded error (message and code from its JSON body). */
export async function responseError(res: AnswerBody): Promise<BuildError> {
  const text = (await readAll(res)).toString('utf8');
  let code: string | undefined;
  let message = `HTTP ${res.status}`;
  let missing: unknown;
  try {
    const b = JSON.parse(text) as { error?: { code?: string; message?: string; missing?: unknown } };
    code = b.error?.code;
    message = b.error?.message ?? message;
    missing = b.error?.missing;
  } catch {
    if (text) message = `${message}: ${text.slice(0, 200)}`;
  }
  const known: ErrorCode = code && code in ERROR_CODES ? (code as ErrorCode) : res.status === 401 ? 'ERR_KILN_SERVICE_AUTH' : res.status === 404 ? 'ERR_KILN_SERVICE_NOT_FOUND' : res.status >= 500 ? 'ERR_KILN_SERVICE_UNAVAILABLE' : 'ERR_KILN_SERVICE_REQUEST';
  return new BuildError(known, `kiln serve: ${message}`, { details: { status: res.status, ...(missing ? { missing } : {}) } });
}
