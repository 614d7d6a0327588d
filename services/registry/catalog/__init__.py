"""The certification catalog: MCPs, versions, their scans and policies (docs/CATALOG.md)."""
