"""The gateway service: the MCP endpoints in front of the registered servers; nothing durable."""
