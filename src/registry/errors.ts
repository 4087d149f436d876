import { BuildError, type ErrorCode } from '../errors/index.js';

/** A URL with any user:password removed and token-like query values masked, safe to print. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    u.username = '';
    u.password = '';
    for (const k of [...u.searchParams.keys()]) if (/token|secret|password|sig|key|credential/i.test(k)) u.searchParams.set(k, '***');
    return u.toString();
  } catch {
    return url.replace(/\/\/[^/@]*@/, '//');
  }
}

/** A registry failure as a BuildError; every URL in the message has its credentials removed. */
export function registryError(code: ErrorCode, message: string, opts: { cause?: unknown; hint?: string; details?: Record<string, unknown> } = {}): BuildError {
  const clean = message.replace(/https?:\/\/[^\s"')]+/g, (m) => redactUrl(m));
  return new BuildError(code, clean, {
    ...(opts.hint ? { hint: opts.hint } : {}),
    ...(opts.cause !== undefined ? { cause: opts.cause } : {}),
    ...(opts.details ? { details: opts.details } : {}),
  });
}
