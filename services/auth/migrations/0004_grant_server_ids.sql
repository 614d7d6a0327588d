-- Tenancy (docs/TENANCY.md): a grant binds to a server id of its team's org (or of a server a
-- platform admin shared with that org), resolved with the registry when the grant is set.
-- Grants stored before this migration name a server only; the service binds each one at start
-- (rpc.registry.resolve) and leaves a name of another org's server, or of no server, unbound:
-- an unbound grant gives nothing.
ALTER TABLE grants ADD COLUMN server_id uuid;
CREATE INDEX grants_server_id ON grants (server_id);
