-- The certification catalog (docs/CATALOG.md): MCP packages, their versions (source tarballs),
-- scan snapshots with control results, org policies, reports and webhook deliveries.

CREATE TABLE categories (
    id uuid PRIMARY KEY,
    slug text NOT NULL UNIQUE,
    name text NOT NULL,
    description text NOT NULL DEFAULT '',
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE tags (
    id uuid PRIMARY KEY,
    slug text NOT NULL UNIQUE,
    name text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- org null: a platform entry; visibility private: seen only by its org (and platform admins)
CREATE TABLE mcps (
    id uuid PRIMARY KEY,
    name text NOT NULL,
    org text,
    visibility text NOT NULL DEFAULT 'public' CHECK (visibility IN ('public', 'private')),
    title text,
    description text NOT NULL DEFAULT '',
    repo_url text,
    homepage text,
    language text,
    license text,
    category_id uuid REFERENCES categories (id) ON DELETE SET NULL,
    featured boolean NOT NULL DEFAULT false,
    -- the official registry's server.json as last given (remotes, packages), for the subregistry
    server_json jsonb,
    created_by text,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX mcps_org_name ON mcps ((coalesce(org, '')), name);
CREATE INDEX mcps_org ON mcps (org);

CREATE TABLE mcp_tags (
    mcp_id uuid NOT NULL REFERENCES mcps (id) ON DELETE CASCADE,
    tag_id uuid NOT NULL REFERENCES tags (id) ON DELETE CASCADE,
    PRIMARY KEY (mcp_id, tag_id)
);

-- one source of an MCP, as a normalised tarball; status follows its scan
CREATE TABLE mcp_versions (
    id uuid PRIMARY KEY,
    mcp_id uuid NOT NULL REFERENCES mcps (id) ON DELETE CASCADE,
    visible_version text NOT NULL,
    source_kind text NOT NULL CHECK (source_kind IN ('git', 'tarball', 'server_json')),
    source_url text,
    git_ref text,
    commit_sha text,
    source_size bigint NOT NULL DEFAULT 0,
    file_count integer NOT NULL DEFAULT 0,
    sha256 text,
    status text NOT NULL DEFAULT 'PENDING'
        CHECK (status IN ('PENDING', 'SCANNING', 'CERTIFIED', 'FAILED', 'ERROR')),
    status_error text,
    server_json jsonb,
    created_by text,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (mcp_id, visible_version)
);
CREATE INDEX mcp_versions_mcp_created ON mcp_versions (mcp_id, created_at DESC);

-- the bytes, apart so that listing versions never reads them
CREATE TABLE version_sources (
    version_id uuid PRIMARY KEY REFERENCES mcp_versions (id) ON DELETE CASCADE,
    tarball bytea NOT NULL
);

CREATE TABLE snapshots (
    id uuid PRIMARY KEY,
    version_id uuid NOT NULL REFERENCES mcp_versions (id) ON DELETE CASCADE,
    global_score integer NOT NULL,
    security_score integer NOT NULL,
    supply_chain_score integer NOT NULL,
    maturity_score integer NOT NULL,
    grade text NOT NULL,
    -- {"security": {"score", "weight", "breakdown": {...}}, ...}
    scores jsonb NOT NULL,
    toolchain_version text NOT NULL,
    scoring_version text NOT NULL,
    controls_catalog_version text NOT NULL,
    total_findings integer NOT NULL DEFAULT 0,
    critical_findings integer NOT NULL DEFAULT 0,
    high_findings integer NOT NULL DEFAULT 0,
    medium_findings integer NOT NULL DEFAULT 0,
    low_findings integer NOT NULL DEFAULT 0,
    -- tool definitions found in the source: [{"name", "description", "description_sha256",
    -- "fingerprint" (review.fingerprint of the full definition, only from a tools.json manifest)}]
    tools jsonb NOT NULL DEFAULT '[]',
    duration_ms integer,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX snapshots_version_created ON snapshots (version_id, created_at DESC);

CREATE TABLE control_results (
    id uuid PRIMARY KEY,
    snapshot_id uuid NOT NULL REFERENCES snapshots (id) ON DELETE CASCADE,
    control_id text NOT NULL,
    control_name text NOT NULL,
    control_category text NOT NULL,
    passed boolean NOT NULL,
    severity text NOT NULL CHECK (severity IN ('critical', 'high', 'medium', 'low', 'info')),
    message text NOT NULL DEFAULT '',
    findings integer NOT NULL DEFAULT 0,
    evidence jsonb NOT NULL DEFAULT '[]',
    UNIQUE (snapshot_id, control_id)
);

CREATE TABLE policies (
    id uuid PRIMARY KEY,
    org text NOT NULL,
    name text NOT NULL,
    description text NOT NULL DEFAULT '',
    action text NOT NULL CHECK (action IN ('ALLOW', 'DENY', 'REQUIRE_APPROVAL')),
    target_type text NOT NULL CHECK (target_type IN ('SCORE', 'LICENSE', 'NAME', 'CONTROL')),
    target_value text NOT NULL,
    priority integer NOT NULL DEFAULT 100,
    enabled boolean NOT NULL DEFAULT true,
    version bigint NOT NULL DEFAULT nextval('change_seq'),
    created_by text,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (org, name)
);

-- an org's admin approved an MCP version that a REQUIRE_APPROVAL policy holds back
CREATE TABLE policy_approvals (
    org text NOT NULL,
    version_id uuid NOT NULL REFERENCES mcp_versions (id) ON DELETE CASCADE,
    approved_by text,
    reason text NOT NULL DEFAULT '',
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (org, version_id)
);

CREATE TABLE reports (
    id uuid PRIMARY KEY,
    org text NOT NULL,
    snapshot_id uuid NOT NULL REFERENCES snapshots (id) ON DELETE CASCADE,
    format text NOT NULL DEFAULT 'PDF' CHECK (format IN ('PDF')),
    status text NOT NULL DEFAULT 'PENDING' CHECK (status IN ('PENDING', 'COMPLETED', 'FAILED')),
    error text,
    content bytea,
    created_by text,
    created_at timestamptz NOT NULL DEFAULT now(),
    completed_at timestamptz
);
CREATE INDEX reports_org ON reports (org, created_at DESC);

-- every signed webhook delivery once: a redelivery of the same id changes nothing
CREATE TABLE webhook_deliveries (
    provider text NOT NULL,
    delivery_id text NOT NULL,
    event text NOT NULL DEFAULT '',
    outcome jsonb NOT NULL DEFAULT '{}',
    received_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (provider, delivery_id)
);

-- a server registered from the catalog carries the version it was certified as
ALTER TABLE servers ADD COLUMN catalog_version_id uuid
    REFERENCES mcp_versions (id) ON DELETE SET NULL;
