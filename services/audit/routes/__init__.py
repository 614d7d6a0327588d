"""HTTP routes of the audit service, one module per group."""
