-- MCPBox: a code tool lives under a chosen server (a registry server of transport `code`);
-- the built-in `code` server holds the ones created without one.
ALTER TABLE code_tools ADD COLUMN IF NOT EXISTS server text NOT NULL DEFAULT 'code';
CREATE INDEX IF NOT EXISTS code_tools_server_idx ON code_tools (server);
