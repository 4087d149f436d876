-- Up Migration
-- kiln's own bookkeeping beside pg-boss (which keeps its jobs in its own schema, `pgboss`).
-- The queue does not reference `teams`: it is a part of its own, usable before a team row exists.

-- one row per enqueued build: which pg-boss job (and queue) carries it
CREATE TABLE queue_jobs (
  build_id   text PRIMARY KEY,
  job_id     uuid NOT NULL UNIQUE,
  team_id    text NOT NULL,
  queue_name text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  -- set when the job completed, failed for good or was cancelled: teams with open jobs are the ones workers poll
  done_at    timestamptz
);
CREATE INDEX queue_jobs_open ON queue_jobs (team_id) WHERE done_at IS NULL;

-- a job being run: written by the worker while it holds the job's session advisory lock. A row whose lock nobody
-- holds belongs to a worker that died; any worker's reaper then fails the job so pg-boss retries it.
CREATE TABLE queue_leases (
  job_id     uuid PRIMARY KEY,
  build_id   text NOT NULL,
  team_id    text NOT NULL,
  queue_name text NOT NULL,
  worker     text NOT NULL,
  started_at timestamptz NOT NULL DEFAULT now()
);

-- per-team concurrency limit across all workers (absent: the queue's default)
CREATE TABLE queue_team_limits (
  team_id        text PRIMARY KEY,
  max_concurrent integer NOT NULL CHECK (max_concurrent > 0)
);

-- Down Migration
DROP TABLE queue_team_limits;
DROP TABLE queue_leases;
DROP TABLE queue_jobs;
