"""Local stack tooling: Postgres, NATS, nginx and the five services for `make run` and tests."""
