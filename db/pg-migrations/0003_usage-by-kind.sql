-- Up Migration
-- Usage is read per team and kind over a time range (GET /v1/usage sums each kind since a time): index it that way.
CREATE INDEX usage_team_kind_at ON usage (team_id, kind, at);
DROP INDEX usage_team_at;

-- Down Migration
CREATE INDEX usage_team_at ON usage (team_id, at);
DROP INDEX usage_team_kind_at;
