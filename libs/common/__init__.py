"""What every service uses: settings, logging, errors, HTTP, database, NATS, events and RPC."""
