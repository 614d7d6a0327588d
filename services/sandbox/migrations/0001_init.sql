COMMENT ON SCHEMA sandbox IS 'Switchboard sandbox service: hosted processes, code tools, approvals, policy';
