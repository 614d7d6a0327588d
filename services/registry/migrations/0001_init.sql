COMMENT ON SCHEMA registry IS 'Switchboard registry service: servers, tools, health, settings';
