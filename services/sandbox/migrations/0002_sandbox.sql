-- hosted process state as last reported by a replica
CREATE TABLE processes (
    key text PRIMARY KEY,
    server text NOT NULL,
    state text NOT NULL,
    pid integer,
    restarts integer NOT NULL DEFAULT 0,
    exit_code integer,
    reason text,
    instance text NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX processes_server ON processes (server);

-- per-server egress allowlist (host, or host:port)
CREATE TABLE allowed_hosts (
    server text NOT NULL,
    host text NOT NULL,
    created_by text,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (server, host)
);

-- approvals of tools, modules and network hosts
CREATE TABLE approvals (
    id uuid PRIMARY KEY,
    kind text NOT NULL CHECK (kind IN ('tool', 'module', 'network')),
    subject text NOT NULL,           -- tool id, module name, or host
    server text,                     -- network: the server that asked
    version integer,                 -- tool: the version awaiting approval
    status text NOT NULL CHECK (status IN ('pending', 'approved', 'rejected', 'revoked')),
    reason text,
    requested_by text,
    decided_by text,
    decided_at timestamptz,
    details jsonb NOT NULL DEFAULT '{}',
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX approvals_kind_status ON approvals (kind, status);
-- one open request per thing: a second refusal of the same host does not pile up
CREATE UNIQUE INDEX approvals_one_pending
    ON approvals (kind, subject, coalesce(server, ''), coalesce(version, 0))
    WHERE status = 'pending';

-- Python code tools and their versions
CREATE TABLE code_tools (
    id uuid PRIMARY KEY,
    name text NOT NULL UNIQUE,
    description text NOT NULL DEFAULT '',
    code text NOT NULL,
    input_schema jsonb NOT NULL DEFAULT '{"type": "object"}',
    version integer NOT NULL,
    approved_version integer,
    status text NOT NULL DEFAULT 'pending',   -- pending | approved | rejected | revoked
    created_by text,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE code_tool_versions (
    tool_id uuid NOT NULL REFERENCES code_tools (id) ON DELETE CASCADE,
    version integer NOT NULL,
    description text NOT NULL,
    code text NOT NULL,
    input_schema jsonb NOT NULL,
    created_by text,
    note text,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tool_id, version)
);

-- the module allowlist for code tools
CREATE TABLE modules (
    name text PRIMARY KEY,
    version text,
    status text NOT NULL DEFAULT 'allowed',   -- allowed | installed | failed
    install_error text,
    added_by text,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- the security policy: one row
CREATE TABLE policy (
    id boolean PRIMARY KEY DEFAULT true CHECK (id),
    doc jsonb NOT NULL,
    updated_by text,
    updated_at timestamptz NOT NULL DEFAULT now()
);
