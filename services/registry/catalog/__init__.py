"""The certification catalog: MCPs, their versions and sources, curation (docs/CATALOG.md)."""
