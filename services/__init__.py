"""The Switchboard services: auth, registry, gateway, sandbox and audit, one package each."""
