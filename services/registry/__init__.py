"""The registry service: servers, their tools, upstream secrets, health and settings."""
