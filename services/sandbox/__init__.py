"""The sandbox service: confined hosted stdio MCP servers and code tools, egress and approvals."""
