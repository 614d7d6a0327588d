"""The auth service: users, orgs, teams, grants, API keys, service tokens and sessions."""
