"""SQL for the auth schema, one module per aggregate."""
