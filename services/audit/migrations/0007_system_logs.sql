-- The services' own WARNING+ log lines (live.logs.<service>), newest kept, for
-- GET /api/v1/monitoring/logs; trimmed to the newest rows as lines arrive.
CREATE TABLE IF NOT EXISTS system_logs (
    id bigserial PRIMARY KEY,
    time timestamptz NOT NULL,
    level text NOT NULL,
    source text NOT NULL,
    instance text,
    event text NOT NULL,
    fields jsonb NOT NULL DEFAULT '{}'::jsonb
);
CREATE INDEX IF NOT EXISTS system_logs_time_idx ON system_logs (time DESC);
