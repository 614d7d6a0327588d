-- Sign-in throttling per name tried, whether or not a user has it (so the answers never tell
-- which names exist): failures in a row, and when the next attempt of a paced name may start.
-- Stored as a SHA-256 of the lower-cased name. Registrations are counted per source address.
CREATE TABLE sign_in_names (
    name_hash text PRIMARY KEY,
    failures integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX sign_in_names_updated ON sign_in_names (updated_at);
CREATE INDEX oauth_clients_source ON oauth_clients (source, created_at);
