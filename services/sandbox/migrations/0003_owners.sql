-- which replica owns each hosted process key (server, or server@user): a lease it refreshes
CREATE TABLE owners (
    key text PRIMARY KEY,
    server text NOT NULL,
    instance text NOT NULL,
    expires_at timestamptz NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX owners_server ON owners (server);
CREATE INDEX owners_instance ON owners (instance);
