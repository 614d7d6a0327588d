COMMENT ON SCHEMA gateway IS 'Switchboard gateway: nothing durable; the schema holds framework tables only';
