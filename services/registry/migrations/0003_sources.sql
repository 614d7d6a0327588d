-- external MCP sources (MCPBox): remote endpoints whose tools are discovered and imported into a
-- server; headers are sealed as one JSON object under the master key `key_id`
CREATE TABLE sources (
    id uuid PRIMARY KEY,
    server_id uuid NOT NULL REFERENCES servers (id) ON DELETE CASCADE,
    name text NOT NULL,
    description text NOT NULL DEFAULT '',
    transport text NOT NULL CHECK (transport IN ('sse', 'streamable-http')),
    url text NOT NULL,
    header_keys text[] NOT NULL DEFAULT '{}',
    nonce bytea,
    ciphertext bytea,
    key_id text,
    status text NOT NULL DEFAULT 'unknown' CHECK (status IN ('healthy', 'unhealthy', 'unknown')),
    status_error text,
    discovered_tools jsonb NOT NULL DEFAULT '[]',
    discovered_at timestamptz,
    imported_at timestamptz,
    created_by text,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (server_id, name)
);

-- a tool imported from a source; NULL for the server's own (discovered) tools
ALTER TABLE tools ADD COLUMN source_id uuid REFERENCES sources (id) ON DELETE CASCADE;
