-- OAuth 2.1 for MCP clients: registered clients, authorization codes, and OAuth sessions (a
-- session of kind 'oauth' is one grant: its refresh-token family and the JWT `sid`).
-- Also: server grants carried by service tokens.

ALTER TABLE sessions DROP CONSTRAINT sessions_kind_check;
ALTER TABLE sessions ADD CONSTRAINT sessions_kind_check
    CHECK (kind IN ('api', 'browser', 'oauth'));
ALTER TABLE sessions ADD COLUMN oauth_client_id text;
ALTER TABLE sessions ADD COLUMN resource text;
ALTER TABLE sessions ADD COLUMN scope text;

CREATE TABLE oauth_clients (
    id text PRIMARY KEY,
    name text NOT NULL DEFAULT '',
    redirect_uris text[] NOT NULL,
    grant_types text[] NOT NULL,
    scope text NOT NULL DEFAULT '',
    metadata jsonb NOT NULL DEFAULT '{}',
    source text NOT NULL DEFAULT '',
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE oauth_codes (
    code_hash text PRIMARY KEY,
    client_id text NOT NULL REFERENCES oauth_clients (id) ON DELETE CASCADE,
    user_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    redirect_uri text NOT NULL,
    code_challenge text NOT NULL,
    resource text NOT NULL,
    scope text NOT NULL,
    expires_at timestamptz NOT NULL,
    used_at timestamptz,
    session_id uuid,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX oauth_codes_expires ON oauth_codes (expires_at);

ALTER TABLE service_tokens ADD COLUMN grants jsonb;
