-- a tool's `execution` object as the upstream declared it (2025-11-25: `taskSupport`); NULL when
-- it declared none. Part of the reviewed definition only when present, so the fingerprints of
-- tools without it stay what they were.
ALTER TABLE tools ADD COLUMN execution jsonb;
