-- Alert rules may be scoped to an org (its admins manage them; only its calls count), and an
-- alert outlives its rule (history is kept when a rule is deleted).
ALTER TABLE alert_rules ADD COLUMN org text;
ALTER TABLE alert_rules ADD COLUMN org_refs text[] NOT NULL DEFAULT '{}';
CREATE INDEX alert_rules_org_idx ON alert_rules (org);

ALTER TABLE alerts ADD COLUMN org text;
ALTER TABLE alerts ADD COLUMN window_minutes integer;
ALTER TABLE alerts ADD COLUMN webhook_status text;
ALTER TABLE alerts ALTER COLUMN rule_id DROP NOT NULL;
ALTER TABLE alerts DROP CONSTRAINT alerts_rule_id_fkey;
ALTER TABLE alerts ADD CONSTRAINT alerts_rule_id_fkey
    FOREIGN KEY (rule_id) REFERENCES alert_rules (id) ON DELETE SET NULL;
CREATE INDEX alerts_org_idx ON alerts (org, fired_at DESC);
CREATE INDEX alerts_server_idx ON alerts (server, fired_at DESC);
