"""SQL for the sandbox schema, one module per aggregate."""

SCHEMA = "sandbox"  # the service's schema, and the source of the events it publishes
