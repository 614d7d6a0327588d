"""Upstream MCP servers: the pool, its transports, session streams and breakers."""
