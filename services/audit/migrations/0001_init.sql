-- Every event from events.> (but heartbeats), stored once by event id.
CREATE TABLE events (
    id uuid PRIMARY KEY,
    type text NOT NULL,
    source text NOT NULL,
    time timestamptz NOT NULL,
    actor text,
    org text,
    trace_id text,
    data jsonb NOT NULL DEFAULT '{}'::jsonb,
    received_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX events_time_idx ON events (time DESC);
CREATE INDEX events_type_idx ON events (type, time DESC);

-- The last heartbeat of every service replica; a replica silent for three intervals is down.
CREATE TABLE service_instances (
    service text NOT NULL,
    instance text NOT NULL,
    version text NOT NULL,
    started_at timestamptz NOT NULL,
    last_heartbeat timestamptz NOT NULL,
    interval_s double precision NOT NULL,
    stopped_at timestamptz,
    PRIMARY KEY (service, instance)
);
