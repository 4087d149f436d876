/** The page's calls to kiln serve: every one sends the key entered at sign-in as a Bearer token. */

export interface BuildRow {
  id: string;
  status: string;
  template: string | null;
  created: number;
  started: number | null;
  finished: number | null;
  error: string | null;
  durationMs: number | null;
  cachedSteps: number;
  totalSteps: number;
  startedBy: string | null;
}

export interface Step { name: string; cached: boolean; durationMs: number; missReason?: string }

export interface Build {
  id: string;
  status: string;
  template: string | null;
  created: number;
  started: number | null;
  finished: number | null;
  error: string | null;
  result: { name: string; tag: string | null; digest: string; durationMs: number; steps: Step[] } | null;
}

export interface TemplateTag { tag: string; digest: string; buildId: string; created: number; updated: number }
export interface TemplateDetail { name: string; tags: TemplateTag[]; digest: string; size: number; created: number }

export interface CacheView {
  /** local: the team's root on this node; registry: the bytes workers pushed to the shared registry cache */
  source: 'local' | 'registry';
  sizeBytes: number;
  growth: Array<{ id: string; at: number; bytes: number }>;
  templates: Array<{ name: string; builds: number; steps: number; hits: number; savedMs: number; hitRate: number }>;
  series: Array<{ id: string; template: string | null; created: number; ranMs: number; savedMs: number; cachedSteps: number; totalSteps: number }>;
}

/** An error the server answered with (its JSON error body), or a network failure. */
export class ApiError extends Error {
  constructor(readonly status: number, message: string, readonly code: string) {
    super(message);
  }
}

const KEY = 'kiln.apiKey';

export function savedKey(): string | null {
  return sessionStorage.getItem(KEY);
}

export function saveKey(key: string | null): void {
  if (key === null) sessionStorage.removeItem(KEY);
  else sessionStorage.setItem(KEY, key);
}

export async function getJson<T>(key: string, path: string): Promise<T> {
  let res: Response;
  try {
    res = await fetch(path, { headers: { authorization: `Bearer ${key}` } });
  } catch {
    throw new ApiError(0, 'the server cannot be reached', 'NETWORK');
  }
  const text = await res.text();
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    body = undefined;
  }
  if (!res.ok) {
    const e = (body as { error?: { code?: string; message?: string } } | undefined)?.error;
    throw new ApiError(res.status, e?.message ?? `HTTP ${res.status}`, e?.code ?? 'HTTP');
  }
  return body as T;
}

/** One parsed line of a build's event stream (the --progress=json lines). */
export interface BuildEvent {
  type: string;
  id?: string;
  name?: string;
  durationMs?: number;
  error?: string;
  data?: string;
  stream?: string;
  status?: string;
  steps?: number;
}

/**
 * Follow a build's Server-Sent Events with fetch (EventSource cannot send an Authorization header); reconnects
 * with Last-Event-ID until the finish event or `signal` aborts.
 */
export async function followEvents(key: string, id: string, onEvent: (e: BuildEvent) => void, signal: AbortSignal): Promise<void> {
  let last = 0;
  let finished = false;
  while (!finished && !signal.aborted) {
    try {
      const res = await fetch(`/v1/builds/${encodeURIComponent(id)}/events`, {
        headers: { authorization: `Bearer ${key}`, accept: 'text/event-stream', ...(last ? { 'last-event-id': String(last) } : {}) },
        signal,
      });
      if (!res.ok || !res.body) throw new ApiError(res.status, `events: HTTP ${res.status}`, 'HTTP');
      const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
      let buf = '';
      let cur: { id?: number; data: string[] } = { data: [] };
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buf += value;
        let nl: number;
        while ((nl = buf.indexOf('\n')) >= 0) {
          const line = buf.slice(0, nl).replace(/\r$/, '');
          buf = buf.slice(nl + 1);
          if (line === '') {
            if (cur.data.length) {
              if (cur.id !== undefined) last = cur.id;
              const e = JSON.parse(cur.data.join('\n')) as BuildEvent;
              onEvent(e);
              if (e.type === 'finish') finished = true;
            }
            cur = { data: [] };
          } else if (line.startsWith('data:')) cur.data.push(line.slice(5).replace(/^ /, ''));
          else if (line.startsWith('id:')) cur.id = Number(line.slice(3).trim());
        }
      }
      if (!finished) finished = true; // the server ends the stream only after the finish event or for a finished build
    } catch (err) {
      if (signal.aborted) return;
      if (err instanceof ApiError && err.status >= 400 && err.status < 500) throw err;
      await new Promise((r) => setTimeout(r, 1000));
    }
  }
}

export function formatMs(ms: number | null | undefined): string {
  if (ms === null || ms === undefined) return '–';
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`;
  return `${Math.floor(ms / 60_000)} min ${Math.round((ms % 60_000) / 1000)} s`;
}

export function formatBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  let v = n;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${i === 0 ? v : v.toFixed(1)} ${units[i]}`;
}

export function formatTime(ms: number): string {
  return new Date(ms).toLocaleString();
}
