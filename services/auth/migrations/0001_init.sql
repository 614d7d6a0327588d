-- auth schema: the first migration only marks the schema as the auth service's own.
COMMENT ON SCHEMA auth IS 'Switchboard auth service: users, orgs, teams, grants, keys, tokens';
