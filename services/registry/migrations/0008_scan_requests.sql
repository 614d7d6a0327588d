-- Scans (docs/CATALOG.md, Scanning): the scan request (event envelope id) a snapshot answers, so
-- a redelivered request stores nothing twice; and when each version's scan started and ended.
ALTER TABLE snapshots ADD COLUMN request_id text;
CREATE UNIQUE INDEX snapshots_request ON snapshots (request_id) WHERE request_id IS NOT NULL;
ALTER TABLE snapshots ADD COLUMN isolation text;
ALTER TABLE mcp_versions ADD COLUMN scan_started_at timestamptz;
ALTER TABLE mcp_versions ADD COLUMN scanned_at timestamptz;
