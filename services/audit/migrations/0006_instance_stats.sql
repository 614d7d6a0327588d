-- The latest figures a replica's heartbeat carried (host CPU and memory; the registry adds its
-- server and tool counts and exposure mode), read by GET /api/v1/health.
ALTER TABLE service_instances ADD COLUMN IF NOT EXISTS stats jsonb;
