/** A JSON value: what a job's payload and result may hold. */
export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue };

/** What an API node puts on the queue: one build of one team. */
export interface EnqueueRequest {
  teamId: string;
  /** unique per build: enqueueing the same build twice is refused */
  buildId: string;
  payload: JsonValue;
}

/** A job as a worker receives it. */
export interface QueuedJob {
  jobId: string;
  teamId: string;
  buildId: string;
  payload: JsonValue;
  /** 1 on the first run; more after a worker running it was lost */
  attempt: number;
}

export type JobState = 'queued' | 'running' | 'retry' | 'succeeded' | 'failed' | 'cancelled';

export interface JobStatus {
  jobId: string;
  buildId: string;
  teamId: string;
  state: JobState;
  /** runs started so far */
  attempts: number;
  /** the handler's result when succeeded, its error message when failed */
  result?: JsonValue;
  error?: string;
}

export interface JobContext {
  /** aborted when the build is cancelled (from any API node) or the worker stops without waiting */
  signal: AbortSignal;
  workerId: string;
}

/**
 * Runs one job. Its return value is the job's result. A throw ends the job as failed (a build error is not
 * retried); only a lost worker makes the queue run a job again.
 */
export type JobHandler = (job: QueuedJob, ctx: JobContext) => Promise<JsonValue | void>;

export interface WorkerOptions {
  /** shown in leases and status; unique per worker process (default: host name and pid) */
  workerId?: string;
  /** jobs this worker runs at once, each slot one job at a time (default 1) */
  slots?: number;
  handler: JobHandler;
  /** how often an idle slot looks for work (default 500 ms; an enqueue wakes slots at once) */
  pollMs?: number;
}

export interface QueueWorker {
  readonly workerId: string;
  /** job ids being run now */
  running(): string[];
  /** stop taking jobs; wait for running ones to finish, or abort them (`wait: false`) and hand them back */
  stop(opts?: { wait?: boolean }): Promise<void>;
}

/** A build queue shared by every API node and worker. */
export interface BuildQueue {
  enqueue(req: EnqueueRequest, opts?: { signal?: AbortSignal }): Promise<{ jobId: string }>;
  /** cancel a queued or running build; false when it had already finished (or is unknown) */
  cancel(buildId: string): Promise<boolean>;
  status(buildId: string): Promise<JobStatus | undefined>;
  /** at most `max` builds of this team run at once across all workers */
  setTeamLimit(teamId: string, max: number): Promise<void>;
  startWorker(opts: WorkerOptions): Promise<QueueWorker>;
  close(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}
