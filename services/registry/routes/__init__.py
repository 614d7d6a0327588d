"""HTTP routes of the registry, one module per group."""
