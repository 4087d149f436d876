-- Up Migration
-- kiln's service metadata in PostgreSQL: one schema for every API node and worker.
-- Ids are text (the service makes them); times are timestamptz; sizes are bigint bytes. Names and states follow the
-- SQLite store of `kiln serve` (src/service), so one repository interface can sit on both.

CREATE TABLE teams (
  id          text PRIMARY KEY,
  name        text NOT NULL UNIQUE,
  -- the team's limits as the service keeps them: { concurrentBuilds, uploadBytesPerBuild, storedBytes }
  limits      jsonb NOT NULL DEFAULT '{}'::jsonb CHECK (jsonb_typeof(limits) = 'object'),
  created_at  timestamptz NOT NULL DEFAULT now()
);

-- Only the sha256 of a key is kept (`hash`); `prefix` (the first characters) lets a user tell keys apart.
CREATE TABLE api_keys (
  id           text PRIMARY KEY,
  team_id      text NOT NULL REFERENCES teams(id) ON DELETE CASCADE,
  name         text NOT NULL DEFAULT '',
  hash         text NOT NULL UNIQUE CHECK (hash ~ '^[0-9a-f]{64}$'),
  prefix       text NOT NULL DEFAULT '',
  created_at   timestamptz NOT NULL DEFAULT now(),
  last_used_at timestamptz,
  revoked_at   timestamptz
);
CREATE INDEX api_keys_team ON api_keys (team_id);

CREATE TABLE templates (
  id          text PRIMARY KEY,
  team_id     text NOT NULL REFERENCES teams(id) ON DELETE CASCADE,
  name        text NOT NULL,
  created_at  timestamptz NOT NULL DEFAULT now(),
  updated_at  timestamptz NOT NULL DEFAULT now(),
  UNIQUE (team_id, name)
);

CREATE TABLE builds (
  id             text PRIMARY KEY,
  team_id        text NOT NULL REFERENCES teams(id) ON DELETE CASCADE,
  template_id    text REFERENCES templates(id) ON DELETE SET NULL,
  -- `interrupted`: the service stopped under it (a lost worker is retried instead, see queue_leases)
  status         text NOT NULL DEFAULT 'queued'
                   CHECK (status IN ('queued', 'running', 'success', 'failed', 'cancelled', 'interrupted')),
  created_by_key text REFERENCES api_keys(id) ON DELETE SET NULL,
  -- the build's input (Dockerfile/template, build args, upload digest, tags) as the API received it
  request        jsonb NOT NULL DEFAULT '{}'::jsonb,
  -- the template name:tag the build produces, if any (also reachable through template_id)
  template       text,
  -- the engine's result (digest, steps with cached marks and timings) as JSON
  result         jsonb,
  image_digest   text,
  steps_total    integer,
  steps_cached   integer,
  error          text,
  -- which worker runs (ran) it, and how many times it was started (a lost worker means another attempt)
  worker         text,
  attempt        integer NOT NULL DEFAULT 0,
  created_at     timestamptz NOT NULL DEFAULT now(),
  started_at     timestamptz,
  finished_at    timestamptz
);
CREATE INDEX builds_team_created ON builds (team_id, created_at DESC);
CREATE INDEX builds_active ON builds (status) WHERE status IN ('queued', 'running');

-- A tag points at the build that produced it; re-tagging moves it.
CREATE TABLE template_tags (
  template_id  text NOT NULL REFERENCES templates(id) ON DELETE CASCADE,
  tag          text NOT NULL,
  build_id     text REFERENCES builds(id) ON DELETE SET NULL,
  image_digest text NOT NULL,
  size_bytes   bigint NOT NULL DEFAULT 0 CHECK (size_bytes >= 0),
  created_at   timestamptz NOT NULL DEFAULT now(),
  updated_at   timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (template_id, tag)
);

-- Progress and log events of a build, in order (seq is per build), for live streaming and history; an event's
-- JSON carries its own type. `json`, not `jsonb`: the text comes back byte for byte (SSE resumption replays it).
CREATE TABLE build_events (
  build_id text NOT NULL REFERENCES builds(id) ON DELETE CASCADE,
  seq      integer NOT NULL,
  at       timestamptz NOT NULL DEFAULT now(),
  data     json NOT NULL,
  PRIMARY KEY (build_id, seq)
);

-- Metered usage: one row per measured quantity (build seconds, cache bytes pushed, upload bytes, ...).
CREATE TABLE usage (
  id       bigserial PRIMARY KEY,
  team_id  text NOT NULL REFERENCES teams(id) ON DELETE CASCADE,
  build_id text REFERENCES builds(id) ON DELETE SET NULL,
  kind     text NOT NULL,
  quantity double precision NOT NULL CHECK (quantity >= 0),
  at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX usage_team_at ON usage (team_id, at);

-- Down Migration
DROP TABLE usage;
DROP TABLE build_events;
DROP TABLE template_tags;
DROP TABLE builds;
DROP TABLE templates;
DROP TABLE api_keys;
DROP TABLE teams;
