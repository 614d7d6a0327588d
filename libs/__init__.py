"""Code shared by the services and their tooling: `common` (every service) and `devstack`."""
