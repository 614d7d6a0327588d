"""SQL for the sandbox schema, one module per aggregate."""
