-- an admin's word that a server's tool annotations are honest: only then does the gateway retry
-- a call on the strength of readOnlyHint / idempotentHint
ALTER TABLE servers ADD COLUMN IF NOT EXISTS trusted boolean NOT NULL DEFAULT false;
