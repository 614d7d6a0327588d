-- Tenancy (docs/TENANCY.md): a server belongs to the org in `servers.org` (an org id; none: the
-- platform owns it) and a platform admin may share it with other orgs, whose teams may then be
-- granted read and execute on it. Rows whose `org` still holds a slug are rewritten to the org's
-- id by the service at start (it asks auth: rpc.auth.org), since this schema cannot see orgs.
CREATE TABLE server_shares (
    server_id uuid NOT NULL REFERENCES servers (id) ON DELETE CASCADE,
    org text NOT NULL,
    created_by text,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (server_id, org)
);
CREATE INDEX server_shares_org ON server_shares (org);
