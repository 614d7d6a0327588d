-- Activity: every event but tool calls and heartbeats lives in `events`; these columns say
-- who changed what (action = event type, target = the entity's name or id).
ALTER TABLE events ADD COLUMN action text;
ALTER TABLE events ADD COLUMN target text;
ALTER TABLE events ADD COLUMN before jsonb;
ALTER TABLE events ADD COLUMN after jsonb;
UPDATE events SET action = type WHERE action IS NULL;
CREATE INDEX events_actor_idx ON events (actor, time DESC);
CREATE INDEX events_org_idx ON events (org, time DESC);

-- One row per tools/call through the gateway (id = the event id, so redelivery never doubles).
CREATE TABLE tool_calls (
    id uuid PRIMARY KEY,
    time timestamptz NOT NULL,
    server text NOT NULL,
    tool text NOT NULL,
    status text NOT NULL,
    principal_kind text,
    principal_id text,
    principal_name text,
    credential_id text,
    org text,
    team text,
    endpoint text,
    method text,
    error_code integer,
    error_message text,
    latency_ms double precision NOT NULL DEFAULT 0,
    upstream_ms double precision,
    request_bytes bigint NOT NULL DEFAULT 0,
    response_bytes bigint NOT NULL DEFAULT 0,
    arguments jsonb,
    session_id text,
    client text,
    trace_id text,
    received_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX tool_calls_time_idx ON tool_calls (time DESC);
CREATE INDEX tool_calls_server_idx ON tool_calls (server, time DESC);
CREATE INDEX tool_calls_principal_idx ON tool_calls (principal_id, time DESC);
CREATE INDEX tool_calls_org_idx ON tool_calls (org, time DESC);

-- Per-minute rollups of tool calls, maintained in the transaction that stores each call.
CREATE TABLE call_rollups (
    minute timestamptz NOT NULL,
    server text NOT NULL,
    tool text NOT NULL,
    calls integer NOT NULL DEFAULT 0,
    errors integer NOT NULL DEFAULT 0,
    denied integer NOT NULL DEFAULT 0,
    latency_sum double precision NOT NULL DEFAULT 0,
    latency_max double precision NOT NULL DEFAULT 0,
    PRIMARY KEY (minute, server, tool)
);

-- The last known status of every registered server (from registry events).
CREATE TABLE server_status (
    server text PRIMARY KEY,
    status text NOT NULL,
    org text,
    since timestamptz NOT NULL,
    updated_at timestamptz NOT NULL
);

-- Settings learnt from registry.settings.updated (e.g. audit_arguments).
CREATE TABLE settings (
    key text PRIMARY KEY,
    value jsonb NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE alert_rules (
    id uuid PRIMARY KEY,
    name text NOT NULL UNIQUE,
    kind text NOT NULL,
    server text,
    threshold double precision NOT NULL DEFAULT 0,
    window_minutes integer NOT NULL DEFAULT 5,
    webhook_url text,
    enabled boolean NOT NULL DEFAULT true,
    created_by text,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE alerts (
    id uuid PRIMARY KEY,
    rule_id uuid NOT NULL REFERENCES alert_rules (id) ON DELETE CASCADE,
    rule_name text NOT NULL,
    kind text NOT NULL,
    server text,
    status text NOT NULL,
    value double precision,
    threshold double precision,
    message text NOT NULL,
    fired_at timestamptz NOT NULL,
    resolved_at timestamptz
);
CREATE UNIQUE INDEX alerts_one_firing_idx ON alerts (rule_id) WHERE status = 'firing';
CREATE INDEX alerts_fired_idx ON alerts (fired_at DESC);
