/** What the builder reports; renderers turn it into tty, plain or json output. */
export type ProgressEvent =
  | { type: 'step-start'; id: string; name: string; at: number }
  | { type: 'step-cached'; id: string; name: string; at: number }
  | { type: 'step-done'; id: string; name: string; at: number; durationMs: number }
  | { type: 'step-error'; id: string; name: string; at: number; error: string }
  | { type: 'log'; id: string; name: string; stream: 'stdout' | 'stderr'; data: string; at: number }
  | { type: 'info'; message: string; at: number };

export interface ProgressSink {
  event(e: ProgressEvent): void;
  /** total number of steps, when known */
  setTotal(n: number): void;
  finish(ok: boolean): void;
}

export type ProgressMode = 'auto' | 'tty' | 'plain' | 'json' | 'quiet';
