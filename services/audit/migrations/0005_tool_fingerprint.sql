-- which definition of the tool was called: the registry's fingerprint (sha256 of its canonical
-- definition) as the gateway routed it; NULL for calls recorded before, and for refusals of
-- tools the caller could not name
ALTER TABLE tool_calls ADD COLUMN IF NOT EXISTS tool_fingerprint text;
