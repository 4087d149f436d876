export type {
  BuildQueue,
  EnqueueRequest,
  JobContext,
  JobHandler,
  JobState,
  JobStatus,
  JsonValue,
  QueuedJob,
  QueueWorker,
  WorkerOptions,
} from './types.js';
export { createPgBuildQueue, teamQueueName } from './pg-boss-queue.js';
export type { PgBuildQueueOptions } from './pg-boss-queue.js';
