-- every change bumps this sequence; the snapshot's version is its last value
CREATE SEQUENCE change_seq;

CREATE TABLE servers (
    id uuid PRIMARY KEY,
    name text NOT NULL UNIQUE,
    path text NOT NULL UNIQUE,
    display_name text,
    description text NOT NULL DEFAULT '',
    transport text NOT NULL CHECK (transport IN ('stdio', 'sse', 'streamable-http', 'code')),
    url text,
    command text,
    args jsonb NOT NULL DEFAULT '[]',
    cwd text,
    tags text[] NOT NULL DEFAULT '{}',
    enabled boolean NOT NULL DEFAULT true,
    org text,
    owner_team text,
    timeout_s double precision NOT NULL DEFAULT 30,
    max_concurrency integer NOT NULL DEFAULT 10,
    per_user boolean NOT NULL DEFAULT false,
    health_interval_s double precision,
    disabled_tools text[] NOT NULL DEFAULT '{}',
    metadata jsonb NOT NULL DEFAULT '{}',
    resources jsonb NOT NULL DEFAULT '[]',
    prompts jsonb NOT NULL DEFAULT '[]',
    status text NOT NULL DEFAULT 'unknown' CHECK (status IN ('healthy', 'unhealthy', 'unknown')),
    status_error text,
    last_checked_at timestamptz,
    next_check_at timestamptz,
    latency_ms double precision,
    discovered_at timestamptz,
    version bigint NOT NULL DEFAULT nextval('change_seq'),
    created_by text,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX servers_org ON servers (org);
CREATE INDEX servers_next_check ON servers (next_check_at) WHERE enabled;

-- header and env values of a server, encrypted with AES-GCM under the master key `key_id`
CREATE TABLE secrets (
    server_id uuid NOT NULL REFERENCES servers (id) ON DELETE CASCADE,
    kind text NOT NULL CHECK (kind IN ('header', 'env')),
    key text NOT NULL,
    nonce bytea NOT NULL,
    ciphertext bytea NOT NULL,
    key_id text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (server_id, kind, key)
);

CREATE TABLE tools (
    id uuid PRIMARY KEY,
    server_id uuid NOT NULL REFERENCES servers (id) ON DELETE CASCADE,
    name text NOT NULL,
    title text,
    description text NOT NULL DEFAULT '',
    input_schema jsonb NOT NULL DEFAULT '{}',
    output_schema jsonb,
    annotations jsonb,
    fingerprint text NOT NULL,
    state text NOT NULL CHECK (state IN ('approved', 'quarantined')),
    -- the last approved definition, kept while a changed version waits in quarantine
    approved jsonb,
    flags jsonb NOT NULL DEFAULT '[]',
    approved_by text,
    approved_at timestamptz,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (server_id, name)
);

-- admin settings; secret values are stored encrypted in `secret`, `value` is then null
CREATE TABLE settings (
    key text PRIMARY KEY,
    value jsonb,
    nonce bytea,
    ciphertext bytea,
    key_id text,
    updated_by text,
    updated_at timestamptz NOT NULL DEFAULT now()
);
