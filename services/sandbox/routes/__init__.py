"""HTTP routes of the sandbox, one module per group."""
