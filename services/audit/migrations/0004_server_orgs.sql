-- Tenancy (docs/TENANCY.md): a tool call is filed under its server's org (a platform-owned
-- server's under the caller's); the caller's own org is kept beside it. Calls recorded before
-- were filed under the caller's org: they move to their server's org as the status projection
-- knows it (servers without an org keep the caller's).
ALTER TABLE tool_calls ADD COLUMN caller_org text;
UPDATE tool_calls SET caller_org = org;
UPDATE tool_calls c SET org = s.org FROM server_status s
    WHERE s.server = c.server AND s.org IS NOT NULL AND c.org IS DISTINCT FROM s.org;

-- Whose each server is (from registry events): what the live channels, the health map, the
-- dashboard and alert rules check a caller against.
CREATE TABLE servers (
    server text PRIMARY KEY,
    server_id text,
    org text,
    owner_team text,
    shared_with text[] NOT NULL DEFAULT '{}',
    updated_at timestamptz NOT NULL DEFAULT now()
);
INSERT INTO servers (server, org, updated_at)
    SELECT server, org, updated_at FROM server_status ON CONFLICT DO NOTHING;
